"""Challengers in shadow: other strategies trading on paper beside the live one, on the same quotes.

Each challenger is one `TradingEngine` on its own `PaperBroker` (never a real broker, whatever the
live broker is), with its own parameters, risk limits and start balance, its own event bus (nobody
listens: a challenger never talks to the chat) and its own tagged records (`ShadowRecorder`). The
live job calls `step(tick)` after the live engine's 1-second step and `bar(window)` after the live
bar decision, so the live strategy never waits for a challenger; a challenger that fails is logged
and counted, never raised into the live loop. When live trades on a paper account (a replay, a dry run)
`follow(broker)` hands every price that account takes to the challengers' accounts too (`quote`), so a
challenger's SL/TP fills at the tick it would live, not at the next 1-second step. The challengers'
bar decisions run side by side (`asyncio.gather`): their records' fsyncs overlap.

State lives under one directory: `challengers.json` (the list, replaced atomically) and one folder
per challenger (paper account, engine state, journal lines). A restart reads them back as they were.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trading.analysis import MarketAnalysis
from trading.broker.paper import PaperBroker, PaperConfig
from trading.domain import ClosedTrade, Tick
from trading.engine import TradingEngine
from trading.events import EventBus
from trading.h1_bias import h1_bias_series
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits
from trading.shadow_stats import Outcome
from trading.shadow_store import ACCOUNT, ShadowRecorder, read_json, write_json_atomic

log = logging.getLogger(__name__)

Analyzer = Callable[[pl.DataFrame], MarketAnalysis]
LIST_FILE = "challengers.json"
LIVE_MODEL = "live"  # a challenger that reads the bar with whatever model live runs
SHADOW_MAGIC = 770_000  # + the challenger's number: its paper tickets never look like live's


class ChallengerError(ValueError):
    """A challenger cannot be added or dropped; the message is one line for the user."""


def params_to_dict(p: StrategyParams) -> dict[str, Any]:
    out = {f.name: getattr(p, f.name) for f in fields(p)}
    out["disabled_gates"] = sorted(p.disabled_gates)
    return out


def params_from_dict(d: dict[str, Any]) -> StrategyParams:
    """StrategyParams from stored or proposed values; ValueError naming an unknown or bad field."""
    known = {f.name for f in fields(StrategyParams)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
    values = dict(d)
    if "disabled_gates" in values:
        values["disabled_gates"] = frozenset(values["disabled_gates"])
    defaults = StrategyParams()
    for name, value in values.items():
        default = getattr(defaults, name)
        if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, int | float) and not isinstance(value, int | float)
        ):
            raise ValueError(f"{name} must be {type(default).__name__}, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{name} must be a whole number, got {value}")
            values[name] = int(value)
    return StrategyParams(**values)


def params_changes(base: StrategyParams, other: StrategyParams) -> dict[str, tuple[Any, Any]]:
    """{field: (base value, other value)} for every field that differs."""
    return {
        f.name: (getattr(base, f.name), getattr(other, f.name))
        for f in fields(base)
        if getattr(base, f.name) != getattr(other, f.name)
    }


@dataclass(frozen=True, slots=True)
class ChallengerSpec:
    number: int
    model_version: str  # a stored version ("v007"), or LIVE_MODEL
    params_name: str  # "" = live's parameters at the time it was added
    params: dict[str, Any]  # the full StrategyParams it trades with (params_to_dict)
    limits: dict[str, Any]  # its RiskLimits at the start (its own copy; the engine state keeps changes)
    start_balance: float
    started: datetime
    added_by: str

    @property
    def tag(self) -> str:
        return f"c{self.number}"

    @property
    def label(self) -> str:
        parts = [] if self.model_version == LIVE_MODEL else [f"model {self.model_version}"]
        if self.params_name:
            parts.append(f"params {self.params_name}")
        return " + ".join(parts) or "live's strategy"

    def strategy_params(self) -> StrategyParams:
        return params_from_dict(self.params)

    def risk_limits(self) -> RiskLimits:
        return RiskLimits(**self.limits)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["started"] = self.started.isoformat()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChallengerSpec:
        return cls(**{**d, "started": datetime.fromisoformat(d["started"])})


@dataclass(slots=True)
class Runner:
    """One challenger at work: its engine on its paper account, and its records."""

    spec: ChallengerSpec
    broker: PaperBroker
    engine: TradingEngine
    recorder: ShadowRecorder
    errors: int = 0
    last_error: str = ""

    def outcomes(self) -> list[Outcome]:
        return [outcome_of(t) for t in self.recorder.closed]


def outcome_of(t: ClosedTrade) -> Outcome:
    risk = t.extra.get("risk_money") if t.extra else None
    if not isinstance(risk, int | float) or risk <= 0:  # unknown at entry: the stop's distance
        risk = abs(t.open_price - t.sl) * t.volume * 100.0 if t.sl else 0.0
    return Outcome(t.close_time, t.profit, float(risk))


class H1Bias:
    """The H1 bias of a bar for a strategy that reads a shared analysis made with the other H1 setting.
    `MarketAnalyzer(with_h1_bias=...)` changes nothing but the analysis's `h1_bias` (the last value of
    `h1_bias_series` over the same window), so the shared analysis with this bias is exactly the one
    the strategy would have made on its own; the series is computed once a bar."""

    def __init__(self, history: int) -> None:
        self.history = history  # the analyzer's window (MarketAnalyzer.history)
        self._key: tuple[Any, int] | None = None
        self._bias = 0
        self.computed = 0

    def of(self, bars: pl.DataFrame) -> int:
        key = (bars["time"][-1] if bars.height else None, bars.height)
        if key != self._key:
            window = bars.tail(self.history) if bars.height > self.history else bars
            self._bias = int(h1_bias_series(window)[-1]) if window.height else 0
            self._key = key
            self.computed += 1
        return self._bias

    def apply(self, analysis: MarketAnalysis, bars: pl.DataFrame, on: bool) -> MarketAnalysis:
        bias = self.of(bars) if on else 0
        return analysis if analysis.h1_bias == bias else replace(analysis, h1_bias=bias)

    def over(self, base: Analyzer, on: bool) -> Analyzer:
        """`base`'s analysis with the H1 bias on or off."""
        return lambda bars: self.apply(base(bars), bars, on)


class BarMemo:
    """Analyse a bar once for every challenger that reads it with the same inputs."""

    def __init__(self, analyze: Analyzer) -> None:
        self.analyze = analyze
        self._key: tuple[Any, int] | None = None
        self._value: MarketAnalysis | None = None
        self.computed = 0

    def __call__(self, bars: pl.DataFrame) -> MarketAnalysis:
        key = (bars["time"][-1] if bars.height else None, bars.height)
        if self._value is None or key != self._key:
            self._value = self.analyze(bars)
            self._key = key
            self.computed += 1
        return self._value


@dataclass(slots=True)
class StepTimes:
    """Wall time the challengers took after the live step (seconds), for /shadow and the bench."""

    steps: list[float] = field(default_factory=list)
    bars: list[float] = field(default_factory=list)

    def add(self, kind: str, seconds: float) -> None:
        series = self.steps if kind == "step" else self.bars
        series.append(seconds)
        if len(series) > 2000:
            del series[:1000]

    def p(self, kind: str, q: float) -> float | None:
        series = self.steps if kind == "step" else self.bars
        return float(np.percentile(series, q)) * 1000 if series else None


class ShadowBook:
    """The challengers beside the live engine. `make_analyzer(spec)` gives the bar analyzer a
    challenger reads (the caller shares one `BarMemo` between challengers with equal inputs)."""

    def __init__(
        self,
        root: Path,
        make_analyzer: Callable[[ChallengerSpec], Analyzer],
        clock: Callable[[], datetime],
        *,
        paper: PaperConfig | None = None,
        symbol: str = "XAUUSD",
        max_challengers: int = 3,
    ) -> None:
        self.root = Path(root)
        self.make_analyzer = make_analyzer
        self.clock = clock
        self.paper = paper or PaperConfig()
        self.symbol = symbol
        self.max_challengers = max_challengers
        self.runners: dict[int, Runner] = {}
        self.times = StepTimes()
        self._last_tick: Tick | None = None
        self.quote_seconds = 0.0  # time the quotes since the last step took (counted in the step's)
        self.broken = ""  # why the stored list could not be read (then nothing may overwrite it)
        self.failed: dict[int, ChallengerSpec] = {}  # stored but could not start

    # ------------------------------------------------------------------ list and lifecycle
    @property
    def specs(self) -> list[ChallengerSpec]:
        return [r.spec for r in self.runners.values()]

    def _save_list(self) -> None:
        # a challenger that could not start (its model version was pruned, say) stays listed, so a fix
        # and a restart bring it back; /shadow drop N removes it
        kept = sorted([*self.specs, *self.failed.values()], key=lambda s: s.number)
        write_json_atomic(self.root / LIST_FILE, [s.to_json() for s in kept])

    def _stored_specs(self) -> list[ChallengerSpec]:
        data = read_json(self.root / LIST_FILE) or []
        return [ChallengerSpec.from_json(d) for d in data]

    async def load(self, tick: Tick | None = None) -> list[str]:
        """Start every stored challenger; returns one line per challenger that could not start."""
        self._last_tick = tick or self._last_tick
        try:
            stored = self._stored_specs()
        except (OSError, ValueError, TypeError, KeyError) as exc:  # the file is kept for a person to mend
            self.broken = (
                f"{self.root / LIST_FILE} is unreadable ({exc}); no challenger runs until it is fixed"
            )
            log.error("%s", self.broken)
            return [self.broken]
        problems = []
        for spec in stored:
            try:
                self.runners[spec.number] = await self._start(spec)
            except Exception as exc:
                log.exception("challenger %s did not start", spec.tag)
                self.failed[spec.number] = spec
                problems.append(f"challenger #{spec.number} ({spec.label}) did not start: {exc}")
        return problems

    async def _start(self, spec: ChallengerSpec) -> Runner:
        folder = self.root / spec.tag
        config = PaperConfig(**{**asdict(self.paper), "balance": spec.start_balance})
        broker = PaperBroker(
            self.symbol, SHADOW_MAGIC + spec.number, state_path=folder / ACCOUNT, config=config
        )
        await broker.connect()
        if self._last_tick is not None:
            broker.set_tick(self._last_tick)
        recorder = ShadowRecorder(folder, spec.tag)
        engine = TradingEngine(
            broker,
            self.make_analyzer(spec),
            params=spec.strategy_params(),
            limits=spec.risk_limits(),
            recorder=recorder,
            bus=EventBus(maxsize=1),
            clock=self.clock,
            comment=f"shadow-{spec.tag}",
        )
        await engine.start(recorder.load_state())
        return Runner(spec, broker, engine, recorder)

    def next_number(self) -> int:
        used = [s.number for s in self.specs] + list(self.failed)
        dropped = (
            [
                int(p.name.split("-")[0][1:])
                for p in (self.root / "dropped").glob("c*-*")
                if p.name.split("-")[0][1:].isdigit()
            ]
            if (self.root / "dropped").is_dir()
            else []
        )
        return max(used + dropped, default=0) + 1

    async def add(self, spec: ChallengerSpec) -> Runner:
        if self.broken:
            raise ChallengerError(self.broken)
        if len(self.runners) + len(self.failed) >= self.max_challengers:
            raise ChallengerError(
                f"{self.max_challengers} challengers already run (the most allowed); "
                "drop one first with /shadow drop N"
            )
        runner = await self._start(spec)
        self.runners[spec.number] = runner
        self._save_list()
        return runner

    async def drop(self, number: int) -> ChallengerSpec:
        if number in self.failed:
            spec = self.failed.pop(number)
            self._save_list()
            return spec
        runner = self.runners.get(number)
        if runner is None:
            have = ", ".join(f"#{n}" for n in sorted(self.runners)) or "none"
            raise ChallengerError(f"no challenger #{number} (running: {have})")
        del self.runners[number]
        self._save_list()
        await runner.broker.disconnect()  # its account's journal synced and closed before the move
        target = self.root / "dropped" / f"{runner.spec.tag}-{self.clock():%Y%m%dT%H%M%S}"
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.move, str(self.root / runner.spec.tag), str(target))
        return runner.spec

    # ------------------------------------------------------------------ driven by the live job
    def follow(self, broker: PaperBroker) -> None:
        """Every price live's paper account takes goes to the challengers' accounts as it comes."""
        if self.quote not in broker.listeners:
            broker.listeners.append(self.quote)

    def quote(self, tick: Tick) -> None:
        """One price for every challenger's account (its SL/TP and stop-out), between live's steps too."""
        self._last_tick = tick
        started = time.perf_counter()
        for runner in list(self.runners.values()):
            try:
                runner.broker.set_tick(tick)
            except Exception as exc:
                self._failed(runner, "quote", exc)
        self.quote_seconds += time.perf_counter() - started

    async def step(self, tick: Tick | None) -> None:
        """After the live 1-second step: the same quote to every challenger's account (taken already when
        the book follows live's paper account), then its step. Its time includes the quotes since the last."""
        quoted, self.quote_seconds = self.quote_seconds, 0.0
        if tick is None or not self.runners:
            return
        started = time.perf_counter()
        if tick is not self._last_tick:
            self.quote(tick)
        for runner in list(self.runners.values()):
            try:
                await runner.engine.on_tick()
            except Exception as exc:
                self._failed(runner, "step", exc)
        self.times.add("step", time.perf_counter() - started + quoted)
        self.quote_seconds = 0.0

    async def bar(self, window: pl.DataFrame) -> None:
        """After the live bar decision: each challenger decides the same closed bar, side by side."""
        if not self.runners:
            return
        started = time.perf_counter()
        runners = list(self.runners.values())
        await asyncio.gather(*(self._decide(r, window) for r in runners))
        self.times.add("bar", time.perf_counter() - started)

    async def _decide(self, runner: Runner, window: pl.DataFrame) -> None:
        try:
            await runner.engine.on_bar(window)
        except Exception as exc:
            self._failed(runner, "bar", exc)

    @staticmethod
    def _failed(runner: Runner, what: str, exc: Exception) -> None:
        runner.errors += 1
        runner.last_error = f"{what}: {exc}"
        if runner.errors <= 3 or runner.errors % 100 == 0:
            log.warning("challenger %s %s failed (%d so far): %s", runner.spec.tag, what, runner.errors, exc)


def load_param_set(folder: Path, name: str, base: Any) -> Any:
    """The StrategyParams of the named set: `NAME.json` (field: value) or an optimize proposal
    (`NAME.json` or `NAME-proposal.json` with a "proposed" object), applied over `base`."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ChallengerError(f"bad parameter set name {name!r} (letters, digits, - and _ only)")
    candidates = [folder / f"{name}.json", folder / f"{name}-proposal.json"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        stored = (
            sorted(p.stem.removesuffix("-proposal") for p in folder.glob("*.json")) if folder.is_dir() else []
        )
        raise ChallengerError(
            f"no parameter set {name!r} in {folder}"
            + (f"; stored: {', '.join(stored)}" if stored else " (the folder holds none)")
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ChallengerError(f"parameter set {name!r} is unreadable: {exc}") from exc
    values = data.get("proposed", data) if isinstance(data, dict) else None
    if not isinstance(values, dict) or not values:
        raise ChallengerError(
            f'parameter set {name!r} holds no parameters (expected {{"field": value, ...}})'
        )
    try:
        return params_from_dict({**params_to_dict(base), **values})
    except (TypeError, ValueError) as exc:
        raise ChallengerError(f"parameter set {name!r} fails validation: {exc}") from exc


def save_param_set(folder: Path, name: str, values: dict[str, Any]) -> Path:
    path = Path(folder) / f"{name}.json"
    write_json_atomic(path, values)
    return path
