"""Input rules for names, emails, free text and lists, in words a user can act on."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence, Sized
from typing import Any

from tilegraph.domain.datasets import DEFAULT_NULL_VALUES, MAX_NULL_VALUE_CHARS, MAX_NULL_VALUES
from tilegraph.domain.errors import BadUserInput, Conflict

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# A card's, transform's or dashboard's key in a workspace directory (`tilegraph export`): it
# names the object's files, so it is spelled the same way on every file system.
WORKSPACE_KEY = re.compile(r"^[a-z0-9_-]{1,100}$")
MAX_WORKSPACE_KEY_CHARS = 100


def check_email(email: str, *, field: str = "email") -> str:
    cleaned = email.strip()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned):
        raise BadUserInput("Enter a valid email address", field=field)
    return cleaned


def check_name(name: str, *, field: str = "name", max_length: int = 200) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise BadUserInput("The name cannot be empty", field=field)
    if len(cleaned) > max_length:
        raise BadUserInput(f"The name must be at most {max_length} characters", field=field)
    return cleaned


def check_workspace_key(key: str | None, *, field: str = "workspaceKey") -> str | None:
    if key is not None and not WORKSPACE_KEY.match(key):
        raise BadUserInput(
            f"A workspace key is 1 to {MAX_WORKSPACE_KEY_CHARS} lower-case letters, digits, "
            "'-' and '_'",
            field=field,
        )
    return key


def check_expected_version(expected: int | None, current: int, what: str) -> None:
    """An update that names the version it read is refused once the object moved on."""
    if expected is not None and expected != current:
        raise Conflict(
            f"The {what} is at version {current}, not {expected}; reload it",
            field="expectedVersion",
        )


def check_count(items: Sized, limit: int, *, field: str, what: str) -> None:
    if len(items) > limit:
        raise BadUserInput(f"At most {limit} {what} are allowed", field=field)


# Free text is stored inside one DynamoDB item (400 KB at most, with everything else the
# record holds): each field has a cap of its own, so a refusal names the field.
MAX_DESCRIPTION_CHARS = 10_000
MAX_PARAMS_BYTES = 64 << 10


def check_description(value: str | None, *, field: str = "description") -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION_CHARS:
        raise BadUserInput(
            f"The description must be at most {MAX_DESCRIPTION_CHARS} characters", field=field
        )
    return value


def check_params(params: Any, *, field: str = "params") -> dict[str, Any] | None:
    """Card and transform params: a JSON object (code reads ``params["name"]``) that fits in
    the record beside everything else."""
    if params is None:
        return None
    if not isinstance(params, dict):
        raise BadUserInput("`params` must be a JSON object", field=field)
    size = len(json.dumps(params, default=str).encode())
    if size > MAX_PARAMS_BYTES:
        raise BadUserInput(
            f"The params are {size} bytes as JSON; at most {MAX_PARAMS_BYTES} are allowed",
            field=field,
        )
    return params


# S3's rules for general purpose bucket names.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
MAX_S3_KEY_BYTES = 1024


def check_bucket_name(bucket: str, *, field: str = "bucket") -> str:
    """A bucket name by S3's naming rules; an ARN, a URL or a path is named as such."""
    if not bucket:
        raise BadUserInput("Name a bucket", field=field)
    if bucket.startswith("arn:") or "://" in bucket or "/" in bucket:
        raise BadUserInput(
            "Give the bucket's name only (like my-exports), not an ARN, URL or path; "
            "the object's path goes in `key`",
            field=field,
        )
    if (
        not _BUCKET.match(bucket)
        or ".." in bucket
        or _IP_ADDRESS.match(bucket)
        or bucket.startswith(_RESERVED_PREFIXES)
        or bucket.endswith(_RESERVED_SUFFIXES)
    ):
        raise BadUserInput(
            "Not a valid S3 bucket name: 3 to 63 lower-case letters, digits, dots and "
            "hyphens, starting and ending with a letter or digit",
            field=field,
        )
    return bucket


def check_s3_key(key: str, *, field: str = "key") -> str:
    if not key:
        raise BadUserInput("Name the object to import", field=field)
    if len(key.encode()) > MAX_S3_KEY_BYTES:
        raise BadUserInput(f"An S3 key is at most {MAX_S3_KEY_BYTES} bytes", field=field)
    return key


def check_null_values(
    values: Sequence[str] | None, *, field: str = "nullValues"
) -> tuple[str, ...]:
    """The cell values an import reads as null: the defaults when none are given, else the
    given ones (each kept once, in order; ``[]`` keeps every value as written)."""
    if values is None:
        return DEFAULT_NULL_VALUES
    check_count(values, MAX_NULL_VALUES, field=field, what="null values")
    for value in values:
        if len(value) > MAX_NULL_VALUE_CHARS:
            raise BadUserInput(
                f"A null value must be at most {MAX_NULL_VALUE_CHARS} characters", field=field
            )
    return tuple(dict.fromkeys(values))
