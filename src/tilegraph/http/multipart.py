"""The GraphQL multipart request spec, with every path of `map` checked: each must lead
through `operations` to a null placeholder (a file variable), so a path into a string, a
number or a missing object is a 400 BAD_USER_INPUT naming `map`, not a 500."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException


class MultipartError(HTTPException):
    def __init__(self, reason: str, field: str) -> None:
        super().__init__(400, reason)
        self.field = field


def _step(container: Any, key: str, path: str) -> tuple[Any, str | int]:
    """The container's slot named by `key`: (container, index) when it can hold a file."""
    if isinstance(container, list):
        if not key.isdigit() or int(key) >= len(container):
            raise MultipartError(f"`map` path {path!r}: {key!r} is not an item of a list", "map")
        return container, int(key)
    if isinstance(container, dict):
        return container, key
    raise MultipartError(f"`map` path {path!r} leads into a value that holds no files", "map")


def _value(container: Any, slot: str | int) -> Any:
    if isinstance(container, list) and isinstance(slot, int):
        return container[slot]
    return container.get(slot)


def place_files(operations: Any, files_map: Any, files: Mapping[str, Any]) -> dict[str, Any]:
    """`operations` with each mapped file put at its paths."""
    if not isinstance(operations, dict):
        raise MultipartError("`operations` must be a JSON object", "operations")
    if not isinstance(files_map, dict):
        raise MultipartError("`map` must be a JSON object of file names to paths", "map")
    placed = copy.deepcopy(operations)
    for name, paths in files_map.items():
        if name not in files:
            raise MultipartError(f"`map` names a file {name!r} the request does not hold", "map")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise MultipartError(f"`map` entry {name!r} must be a list of paths", "map")
        for path in paths:
            *steps, last = path.split(".")
            target: Any = placed
            for key in steps:
                target = _value(*_step(target, key, path))
            container, slot = _step(target, last, path)
            current = _value(container, slot)
            if current is not None:
                raise MultipartError(
                    f"`map` path {path!r} does not lead to a file variable (a null placeholder)",
                    "map",
                )
            container[slot] = files[name]
    return placed
