"""The one error type of the data layer: bad input, named by its path and the reason.

Everything that reads user files raises `DataError`; the CLIs turn it into one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """A file or folder that cannot be used, and why.

    `str(err)` is the one line a user sees: ``"<path>: <reason>"``.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
