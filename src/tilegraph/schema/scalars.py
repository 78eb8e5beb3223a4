"""The contract's custom scalars: DateTime and JSON (strawberry's, described as the contract
describes them) and Upload, with Upload's input check (a scalar override when the schema is
built): an Upload given as a plain value instead of a multipart file part is refused where
the value is read, so the request fails as BAD_USER_INPUT naming the input
(schema/errors.py) instead of deep in a resolver."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from strawberry.file_uploads import Upload
from strawberry.scalars import JSON
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
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
    description="A file sent with the GraphQL multipart request spec.",
    serialize=lambda value: value,
    parse_value=_upload,
)
DATETIME = dataclasses.replace(
    DateTimeDefinition,
    description="ISO-8601 date-time with a UTC offset. Example: 2024-01-31T09:30:00+00:00.",
)
ANY_JSON = dataclasses.replace(DEFAULT_SCALAR_REGISTRY[JSON], description="Any JSON value.")
SCALAR_OVERRIDES: dict[object, Any] = {
    Upload: CHECKED_UPLOAD,
    datetime: DATETIME,
    JSON: ANY_JSON,
}

__all__ = ["JSON", "SCALAR_OVERRIDES", "Upload"]
