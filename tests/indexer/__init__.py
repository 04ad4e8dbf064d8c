"""Tests of the pose index: its store, schema migrations, builds and queries."""
