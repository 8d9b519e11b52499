"""Rolling per-phase loop timing (fetch, analysis, exits, entry) for /status.

The first few runs of a phase after start-up are warm-up (code compiled and caches filled on first
use) and take seconds; the percentiles leave them out once steady samples exist, so /status and
/health judge the loop as it runs, not as it started.
"""

from __future__ import annotations

import time
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType

import numpy as np


class _Phase:
    """`with timer.phase(name):` as a plain class (no generator): entered several times a market second."""

    __slots__ = ("_samples", "_start")

    def __init__(self, samples: deque[float] | list[float]) -> None:
        self._samples = samples
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._samples.append((time.perf_counter() - self._start) * 1000)


WARMUP_SAMPLES = 5  # the first runs of each phase after start-up
_UNTIMED: AbstractContextManager[None] = nullcontext()  # (reusable: it keeps nothing)


class PhaseTimer:
    """`enabled` False: a timer that times nothing (an engine run over history in market time, whose
    wall-clock phases nobody reads): its phases cost a `with` on a shared no-op."""

    def __init__(self, window: int = 1000, *, enabled: bool = True) -> None:
        self._samples: dict[str, deque[float]] = {}
        self._warmup: dict[str, list[float]] = {}
        self._window = window
        self.enabled = enabled

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Times the block, also when it raises."""
        if not self.enabled:
            return _UNTIMED
        samples = self._samples.get(name)
        if samples is None:  # warming up: the steady samples start once the warm-up runs are in
            warm = self._warmup.setdefault(name, [])
            if len(warm) < WARMUP_SAMPLES:
                return _Phase(warm)
            samples = self._samples[name] = deque(maxlen=self._window)
        return _Phase(samples)

    def samples(self, name: str) -> tuple[float, ...]:
        """The last `window` timings of `name`, in ms, oldest first."""
        return tuple(self._samples.get(name, ()))

    def add(self, name: str, ms: float) -> None:
        warm = self._warmup.setdefault(name, [])
        if len(warm) < WARMUP_SAMPLES:
            warm.append(ms)
        else:
            self._samples.setdefault(name, deque(maxlen=self._window)).append(ms)

    def warming_up(self) -> set[str]:
        """Phases that have run only their warm-up so far."""
        return {name for name in self._warmup if not self._samples.get(name)}

    def summary(self) -> dict[str, tuple[float, float]]:
        """phase -> (p50 ms, p99 ms), without the warm-up runs once steady ones exist."""
        out = {}
        for name in self._warmup:
            values = self._samples.get(name) or self._warmup[name]
            if values:
                arr = np.fromiter(values, dtype=float)
                out[name] = (float(np.percentile(arr, 50)), float(np.percentile(arr, 99)))
        return out
