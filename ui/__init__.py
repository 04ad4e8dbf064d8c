"""The Streamlit browser UI: query, browse and reenact. May import `retrieval` and `model`."""
