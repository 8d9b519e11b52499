"""`immutable`: a record never changed once built (a changed one is a `dataclasses.replace`d copy).

The type checker holds it frozen (mypy strict on `trading/` refuses an assignment to a field), while at
run time it is a plain slots dataclass: a frozen dataclass sets each field through `object.__setattr__`,
about four times the cost of building a plain one, and ticks, positions, accounts, analyses and
decisions are built on every step and bar of a replay. Unlike a frozen dataclass it is not hashable:
none of them is a dict key or a set member.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, dataclass_transform, overload

_T = TypeVar("_T")


@overload
def immutable(cls: type[_T], /) -> type[_T]: ...


@overload
def immutable(*, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True)
def immutable(
    cls: type[_T] | None = None, /, *, kw_only: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    def make(c: type[_T]) -> type[_T]:
        return dataclass(slots=True, kw_only=kw_only)(c)

    return make if cls is None else make(cls)
