"""posedex in the browser: the Streamlit entry. Query, Motion, Reenact, Disentangle and Overview pages over one index.

Run by `index ui --index DIR` (which sets the config this reads: `ui.settings.AppConfig`), or by Streamlit itself
with those environment variables set. Each page is one module with `render(retriever, config)`; the model and the
index load once per process (`ui.resources`).
"""

from __future__ import annotations

import streamlit as st

from model.data.errors import DataError
from ui import disentangle_page, motion_page, overview_page, query_page, reenact_page
from ui.resources import load_retriever
from ui.settings import AppConfig

PAGES = {
    "Query": query_page.render,
    "Motion": motion_page.render,
    "Reenact": reenact_page.render,
    "Disentangle": disentangle_page.render,
    "Overview": overview_page.render,
}


def main() -> None:
    """Load the index (once per process), then draw the page chosen in the sidebar.

    Pages handle the errors of the files a user gives them; a file of the index that cannot be read (moved,
    deleted) is caught here, as one message, so the other pages stay usable.
    """
    st.set_page_config(page_title="posedex", page_icon="🙂", layout="wide")
    try:
        config = AppConfig.from_env()
        retriever = load_retriever(config)
    except (KeyError, DataError) as err:
        st.error(f"posedex cannot open its index: {err.args[0] if isinstance(err, KeyError) else err}")
        st.stop()
    with st.sidebar:
        st.title("posedex")
        st.caption("Find faces by pose, and reenact them.")
        page = st.radio("Page", list(PAGES), key="page")
        summary = retriever.summary()
        st.caption(
            f"Index `{config.index_dir.name}`: {summary.num_frames:,} frames of {summary.num_identities} "
            f"identities, {summary.num_videos} videos. Model {retriever.model.size} px, "
            f"pose code {retriever.dim}-D."
        )
    try:
        PAGES[page](retriever, config)
    except DataError as err:  # e.g. a frame file gone from the collection: say which, keep the app usable
        st.error(f"A file could not be read: {err}")


if __name__ == "__main__":
    main()
