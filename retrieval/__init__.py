"""Retrieval over a pose index: ranked hits with metadata, and what the UI browses. May import `model`, `indexer`
(the disentanglement metrics live in `model.evaluation`, which needs no index)."""
