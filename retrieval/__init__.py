"""Retrieval over a pose index: ranked hits with metadata, and disentanglement metrics. May import `model`, `indexer.store`."""
