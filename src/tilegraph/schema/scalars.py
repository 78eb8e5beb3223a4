"""The contract's custom scalars: DateTime (strawberry's datetime), JSON and Upload, with
Upload's input check (a scalar override when the schema is built): an Upload given as a
plain value instead of a multipart file part is refused where the value is read, so the
request fails as BAD_USER_INPUT naming the input (schema/errors.py) instead of deep in a
resolver."""

from __future__ import annotations

from typing import Any

from strawberry.file_uploads import Upload
from strawberry.scalars import JSON
from strawberry.types.scalar import scalar


def _upload(value: Any) -> Any:
    if not (hasattr(value, "read") and hasattr(value, "filename")):
        raise ValueError(
            "Send the file as a part of a multipart request (the GraphQL multipart request "
            "spec), not as a value"
        )
    return value


CHECKED_UPLOAD = scalar(
    name="Upload",
    description="Represents a file upload.",
    serialize=lambda value: value,
    parse_value=_upload,
)
SCALAR_OVERRIDES: dict[object, Any] = {Upload: CHECKED_UPLOAD}

__all__ = ["JSON", "SCALAR_OVERRIDES", "Upload"]
