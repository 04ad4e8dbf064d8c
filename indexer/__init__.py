"""The pose index: FAISS vectors and SQLite metadata kept in step (DESIGN.md, "Index dir"). May import `model`."""
