"""`@field(description=…, extensions=…)` for resolver methods. `strawberry.field` called with
options only is typed to return Any, which leaves every method it decorates untyped; this
is the same call, typed as the decorator it is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

import strawberry
from strawberry.extensions import FieldExtension

P = ParamSpec("P")
R = TypeVar("R")


def field(
    *, description: str | None = None, extensions: Sequence[FieldExtension] = ()
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    decorate: Callable[[Callable[P, R]], Callable[P, R]] = strawberry.field(
        description=description, extensions=list(extensions)
    )
    return decorate
