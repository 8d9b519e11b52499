"""run_for_result: asyncio.run's result, without the event loop ever formatting it."""

from __future__ import annotations

import asyncio

import pytest

from trading.async_run import run_for_result


class Big:
    reprs = 0

    def __repr__(self) -> str:
        Big.reprs += 1
        return "Big"


async def give(value: object) -> object:
    await asyncio.sleep(0)
    return value


def test_the_result_comes_back_and_is_never_formatted() -> None:
    Big.reprs = 0
    big = Big()
    assert run_for_result(give(big)) is big
    assert Big.reprs == 0  # plain asyncio.run on Python 3.11's main thread formats it twice


def test_an_error_in_the_work_is_raised_as_is() -> None:
    async def fail() -> None:
        raise ValueError("bad bar")

    with pytest.raises(ValueError, match="bad bar"):
        run_for_result(fail())
