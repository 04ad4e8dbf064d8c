"""The UI asks the `Retriever`, never the index store behind it: read from the ui/ sources' syntax trees."""

from __future__ import annotations

import ast
from pathlib import Path

import ui

UI_DIR = Path(ui.__file__).parent


def reached_through(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, attribute) of every `.store` and every private `._name` attribute access in `tree` (dunders allowed)."""
    return sorted(
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and (node.attr == "store" or (node.attr.startswith("_") and not node.attr.startswith("__")))
    )


def test_reached_through_finds_store_and_private_access_only() -> None:
    found = reached_through(ast.parse("r.store.get(ids)\nr._ranked(v)\nr.__class__\nr.videos()\nstore = 1\n"))
    assert found == [(1, "store"), (2, "_ranked")]


def test_the_ui_never_reaches_into_the_retrievers_store_or_privates() -> None:
    sources = sorted(UI_DIR.rglob("*.py"))
    assert len(sources) > 10  # the ui/ package's files, not an empty folder
    offending = [
        f"{path.relative_to(UI_DIR.parent)}:{line}: .{attr}"
        for path in sources
        for line, attr in reached_through(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert not offending, "ui/ must ask the Retriever, not reach through it:\n" + "\n".join(offending)
