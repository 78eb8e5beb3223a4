"""The two exceptions callers of the ingest library need to handle."""

from __future__ import annotations


class IngestFailed(Exception):
    """A user-facing failure: the message is safe to show as is and ``str(e) == e.message``.

    ``line`` is the 1-based physical line in the CSV (as a text editor counts it) where the
    problem is, when it is known, so the UI can point at it.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message


class IngestCancelled(Exception):
    """Raised when ``should_cancel`` returned True; nothing was published."""
