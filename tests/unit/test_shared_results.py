"""SharedResults: one computation per key per ttl, shared by concurrent callers."""

from __future__ import annotations

import asyncio

import pytest

from tilegraph.services.rechecks import SharedResults


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Check:
    """Counts its runs; each run says it `started`, waits for `release`, then answers.
    Callers scheduled before a run are all waiting on it by the time it starts."""

    def __init__(self, answer: object = True) -> None:
        self.runs = 0
        self.answer = answer
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> object:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_concurrent_callers_share_one_check_in_flight() -> None:
    results: SharedResults[str, object] = SharedResults(1.5)
    check = Check("ok")
    check.release.clear()
    waiting = [asyncio.ensure_future(results.get("k", check)) for _ in range(1000)]
    await check.started.wait()
    check.release.set()
    assert await asyncio.gather(*waiting) == ["ok"] * 1000
    assert check.runs == 1


async def test_a_result_is_kept_for_the_ttl_only() -> None:
    clock = Clock()
    results: SharedResults[str, object] = SharedResults(1.5, clock=clock)
    check = Check()
    await results.get("k", check)
    clock.now += 1.4
    await results.get("k", check)
    assert check.runs == 1
    clock.now += 0.2
    await results.get("k", check)
    assert check.runs == 2
    await results.get("other", check)
    assert check.runs == 3


async def test_failures_reach_every_waiter_and_are_not_kept() -> None:
    results: SharedResults[str, object] = SharedResults(1.5)
    check = Check(RuntimeError("store down"))
    check.release.clear()
    waiting = [asyncio.ensure_future(results.get("k", check)) for _ in range(3)]
    await check.started.wait()
    check.release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes) and check.runs == 1
    check.answer = True
    assert await results.get("k", check) is True and check.runs == 2


async def test_a_caller_that_leaves_does_not_cancel_the_others_check() -> None:
    results: SharedResults[str, object] = SharedResults(1.5)
    check = Check("ok")
    check.release.clear()
    leaving = asyncio.ensure_future(results.get("k", check))
    staying = asyncio.ensure_future(results.get("k", check))
    await check.started.wait()
    leaving.cancel()
    check.release.set()
    assert await staying == "ok"
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_forget_drops_matching_results_and_keeps_none_in_flight() -> None:
    results: SharedResults[str, object] = SharedResults(1.5)
    check = Check("old")
    await results.get("a", check)
    await results.get("b", check)
    results.forget(lambda key, _: key == "a")
    await results.get("b", check)
    assert check.runs == 2
    await results.get("a", check)
    assert check.runs == 3
    check.release.clear()
    check.started.clear()
    running = asyncio.ensure_future(results.get("c", check))
    await check.started.wait()
    results.forget(lambda key, _: False)  # e.g. a logout while "c" was being checked
    check.release.set()
    assert await running == "old"
    await results.get("c", check)
    assert check.runs == 5


async def test_a_zero_ttl_checks_every_time() -> None:
    results: SharedResults[str, object] = SharedResults(0)
    check = Check()
    for _ in range(3):
        await results.get("k", check)
    assert check.runs == 3
