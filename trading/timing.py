"""Rolling per-phase loop timing (fetch, analysis, exits, entry) for /status."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


class PhaseTimer:
    def __init__(self, window: int = 1000) -> None:
        self._samples: dict[str, deque[float]] = {}
        self._window = window

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - start) * 1000)

    def add(self, name: str, ms: float) -> None:
        self._samples.setdefault(name, deque(maxlen=self._window)).append(ms)

    def summary(self) -> dict[str, tuple[float, float]]:
        """phase -> (p50 ms, p99 ms)."""
        out = {}
        for name, values in self._samples.items():
            if values:
                arr = np.fromiter(values, dtype=float)
                out[name] = (float(np.percentile(arr, 50)), float(np.percentile(arr, 99)))
        return out
