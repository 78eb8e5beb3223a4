"""The contract's custom scalars: DateTime (strawberry's datetime), JSON and Upload."""

from __future__ import annotations

from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

__all__ = ["JSON", "Upload"]
