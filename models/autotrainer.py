"""Auto-trainer: when to retrain (spec §6 schedule, performance drop, manual), training in a separate
process, and the accept / reject / rollback of the result.

`should_retrain(now, ...)` is a pure decision the scheduler calls; `start(trigger)` fetches bars
through the callable it was given, trains in a worker process (never on the event loop) and returns
a Future of the `RetrainOutcome`. A supervisor thread relays progress `(stage, percent)` to the
callback while the worker runs, then, when the registry accepted the new version (not worse than the
active one on the same recent out-of-sample block, and above the AUC floor), loads it and swaps it into
the live `ModelSlot` in one step and emits a MODEL_SWAPPED event. A rejected version stays in the
registry with its reason. Callbacks run on the supervisor thread: the bot must hand them to its loop
(`loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_mod
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from models.registry import ModelRegistry, ModelSlot
from trading.events import Event, EventKind
from trading.timezones import WIB

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class AutoTrainerConfig:
    daily_hour_wib: int = 5  # retrain window 05:00-05:29 WIB
    window_minutes: int = 30
    min_hours_between: float = 20.0
    overdue_hours: float = 24.0
    weekend_deep: bool = True
    low_auc_threshold: float = 0.65  # performance drop: recent AUC under this ...
    low_auc_min_hours: float = 4.0  # ... and at least this long since the last retrain
    retry_after_failure_hours: float = 1.0
    require_market_closed: bool = True
    require_flat: bool = True  # no open positions
    daily_bars: int = 15_000
    daily_rounds: int = 50
    weekend_bars: int = 20_000
    weekend_rounds: int = 80
    min_bars: int = 1_000
    min_auc: float | None = 0.60  # spec: a model under 0.60 AUC is not put live
    margin: float = 0.0  # the new model may not be worse than the active by more than this
    n_folds: int = 4
    test_size: int = 300  # setups per test (and validation) block


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    retrain: bool
    kind: str  # first | daily | weekend | overdue | low_auc | manual | "" when not
    reason: str


@dataclass(frozen=True)
class RetrainOutcome:
    trigger: str
    by: str
    accepted: bool
    reason: str
    version: str | None = None
    old_version: str | None = None
    new_metrics: dict[str, Any] = field(default_factory=dict)
    old_metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


# --------------------------------------------------------------------------- worker side

_PROGRESS: Any = None


def _init_worker(progress_queue: Any) -> None:
    global _PROGRESS
    _PROGRESS = progress_queue


def _report(stage: str, percent: float) -> None:
    if _PROGRESS is not None:
        _PROGRESS.put((stage, float(percent)))


def _train_job(bars: pl.DataFrame, models_dir: str, options: dict[str, Any]) -> dict[str, Any]:
    """Runs in the worker process: train, validate against the active, activate or reject."""
    from models.training import train_models

    options = dict(options)
    activate = bool(options.pop("activate", True))  # False: stored only, the bot puts it in shadow
    report = train_models(bars, models_dir, progress=_report, activate=activate, **options)
    return report.to_json_dict()


# --------------------------------------------------------------------------- the trainer


class AutoTrainer:
    """Decides when to retrain and runs one retrain at a time in a worker process."""

    def __init__(
        self,
        registry: ModelRegistry,
        slot: ModelSlot,
        fetch_bars: Callable[[int], pl.DataFrame],
        config: AutoTrainerConfig | None = None,
        on_progress: ProgressFn | None = None,
        on_event: Callable[[Event], None] | None = None,
        executor_factory: Callable[[Any], Executor] | None = None,
        last_success: datetime | None = None,
        to_shadow: Callable[[str], str] | None = None,
    ) -> None:
        self.registry = registry
        # a new model goes to shadow first: stored, not activated, and handed to this callable (from the
        # supervisor thread), which starts it as a challenger and returns one line saying what it did
        self.to_shadow = to_shadow
        self.slot = slot
        self.fetch_bars = fetch_bars
        self.config = config or AutoTrainerConfig()
        self.on_progress = on_progress or (lambda stage, pct: None)
        self.on_event = on_event or (lambda event: None)
        self.executor_factory = executor_factory or _process_pool
        self.last_success = last_success
        self.last_attempt: datetime | None = last_success
        self.last_failed = False
        self._manual: str | None = None
        self._running = threading.Event()

    @property
    def running(self) -> bool:
        return self._running.is_set()

    def request_manual(self, by: str) -> None:
        """The /retrain command: the next `should_retrain` says yes whatever the schedule."""
        self._manual = by

    # ----- the decision
    def should_retrain(
        self,
        now: datetime,
        *,
        market_open: bool = False,
        open_positions: int = 0,
        recent_auc: float | None = None,
    ) -> RetrainDecision:
        """Spec §6 order, plus the manual and performance-drop triggers. `now` must be timezone-aware."""
        if now.tzinfo is None:
            raise ValueError("should_retrain needs a timezone-aware time")
        cfg = self.config
        if self.running:
            return RetrainDecision(False, "", "a retrain is already running")
        if self._manual is not None:
            return RetrainDecision(True, "manual", f"requested by {self._manual}")
        if cfg.require_market_closed and market_open:
            return RetrainDecision(False, "", "market is open")
        if cfg.require_flat and open_positions > 0:
            return RetrainDecision(False, "", f"{open_positions} position(s) open")
        if (
            self.last_failed
            and self.last_attempt is not None
            and now - self.last_attempt < timedelta(hours=cfg.retry_after_failure_hours)
        ):
            return RetrainDecision(
                False, "", f"last attempt failed less than {cfg.retry_after_failure_hours:g} h ago"
            )
        if self.last_success is None:
            return RetrainDecision(True, "first", "no model has been trained yet")
        since = now - self.last_success
        hours = since.total_seconds() / 3600
        if recent_auc is not None and recent_auc < cfg.low_auc_threshold and hours >= cfg.low_auc_min_hours:
            return RetrainDecision(True, "low_auc", f"recent AUC {recent_auc:.3f} < {cfg.low_auc_threshold}")
        if hours < cfg.min_hours_between:
            return RetrainDecision(
                False, "", f"last retrain {hours:.1f} h ago (< {cfg.min_hours_between:g} h)"
            )
        wib = now.astimezone(WIB)
        if wib.hour == cfg.daily_hour_wib and wib.minute < cfg.window_minutes:
            if cfg.weekend_deep and wib.weekday() >= 5:
                return RetrainDecision(True, "weekend", "weekend deep retrain window")
            return RetrainDecision(True, "daily", "daily retrain window")
        if hours > cfg.overdue_hours:
            return RetrainDecision(
                True, "overdue", f"last retrain {hours:.1f} h ago (> {cfg.overdue_hours:g} h)"
            )
        return RetrainDecision(False, "", "outside the retrain window")

    def check(self, now: datetime, **state: Any) -> Future[RetrainOutcome] | None:
        """Scheduler entry point: decide, and start a retrain when the answer is yes."""
        decision = self.should_retrain(now, **state)
        if not decision.retrain:
            return None
        by = self._manual or "scheduler"
        return self.start(decision.kind, by=by, now=now)

    # ----- running
    def start(
        self, trigger: str, by: str = "scheduler", now: datetime | None = None
    ) -> Future[RetrainOutcome]:
        """Fetch bars and train in a worker process; the returned Future resolves after accept/reject."""
        if not self._running.is_set():
            self._running.set()
        else:
            raise RuntimeError("a retrain is already running")
        self._manual = None
        self.last_attempt = now or datetime.now(WIB)
        outcome: Future[RetrainOutcome] = Future()
        try:
            deep = trigger == "weekend"
            n_bars = self.config.weekend_bars if deep else self.config.daily_bars
            rounds = self.config.weekend_rounds if deep else self.config.daily_rounds
            self.on_progress("fetching bars", 0.0)
            bars = self.fetch_bars(n_bars)
            if bars.height < self.config.min_bars:
                raise ValueError(
                    f"only {bars.height} bars available (< {self.config.min_bars}); retrain aborted"
                )
        except Exception as exc:
            self._finish(
                outcome, RetrainOutcome(trigger, by, False, f"failed: {exc}", error=str(exc)), failed=True
            )
            return outcome
        options = {
            "num_boost_round": rounds,
            "min_auc": self.config.min_auc,
            "margin": self.config.margin,
            "n_folds": self.config.n_folds,
            "test_size": self.config.test_size,
            "valid_size": self.config.test_size,
            "triggered_by": f"{trigger}:{by}",
        }
        if self.to_shadow is not None:
            options["activate"] = False
        old_version = self.registry.active_version()
        thread = threading.Thread(
            target=self._supervise,
            args=(bars, options, trigger, by, old_version, outcome),
            name="autotrainer",
            daemon=True,
        )
        thread.start()
        return outcome

    def run(self, trigger: str = "manual", by: str = "chat") -> Future[RetrainOutcome]:
        """Start a retrain now (what /retrain calls once the chat confirmed); see `start`."""
        return self.start(trigger, by=by)

    def _supervise(
        self,
        bars: pl.DataFrame,
        options: dict[str, Any],
        trigger: str,
        by: str,
        old_version: str | None,
        outcome: Future[RetrainOutcome],
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        progress_queue = ctx.Queue()
        try:
            with self.executor_factory(progress_queue) as pool:
                job = pool.submit(_train_job, bars, str(self.registry.root), options)
                while True:
                    try:
                        stage, pct = progress_queue.get(timeout=0.2)
                        self.on_progress(stage, pct)
                    except queue_mod.Empty:
                        if job.done():
                            break
                result = job.result()
        except Exception as exc:
            log.exception("retrain failed")
            self._finish(
                outcome,
                RetrainOutcome(trigger, by, False, f"failed: {exc}", old_version=old_version, error=str(exc)),
                failed=True,
            )
            return
        finally:
            progress_queue.close()
        self._finish(outcome, self._apply(result, trigger, by, old_version), failed=False)

    def _apply(
        self, result: dict[str, Any], trigger: str, by: str, old_version: str | None
    ) -> RetrainOutcome:
        version = result["version"]
        new_metrics = {k: result["signal"].get(k) for k in ("auc", "accuracy", "log_loss", "brier", "ece")}
        new_metrics["holdout_auc"] = result["signal"]["holdout"]["auc"]
        old_metrics: dict[str, Any] = {}
        if old_version is not None:
            old_metrics = dict(self.registry.metadata(old_version).get("metrics", {}))
        if self.to_shadow is not None and not result["activated"]:
            try:
                said = self.to_shadow(version)
            except Exception as exc:  # the model is stored all the same: /shadow add can start it later
                said = f"not started in shadow ({exc}); /shadow add {version} starts it"
            reason = f"stored as {version}, not live: {said}"
            self.on_event(
                Event(
                    EventKind.INFO,
                    _utcnow(),
                    {"trigger": trigger, "by": by, "version": version, "reason": reason},
                    f"retrained model {reason}",
                )
            )
            return RetrainOutcome(
                trigger,
                by,
                False,
                reason,
                version,
                old_version,
                new_metrics,
                old_metrics,
                float(result["seconds"]),
            )
        if not result["activated"]:
            self.on_event(
                Event(
                    EventKind.INFO,
                    _utcnow(),
                    {"trigger": trigger, "by": by, "version": version, "reason": result["activation_reason"]},
                    f"retrained model {version} rejected: {result['activation_reason']}",
                )
            )
            return RetrainOutcome(
                trigger,
                by,
                False,
                result["activation_reason"],
                version,
                old_version,
                new_metrics,
                old_metrics,
                float(result["seconds"]),
            )
        self.slot.swap(self.registry.load(version))
        self._swapped_event(trigger, by, old_version, version, old_metrics, new_metrics)
        return RetrainOutcome(
            trigger,
            by,
            True,
            result["activation_reason"],
            version,
            old_version,
            new_metrics,
            old_metrics,
            float(result["seconds"]),
        )

    def rollback(self, by: str) -> str:
        """Go back to the previously active version and swap it in (the /rollback command)."""
        if self.running:
            raise RuntimeError("cannot roll back while a retrain is running")
        old = self.registry.active_version()
        target = self.registry.rollback(by=by)
        self.slot.swap(self.registry.load(target))
        old_metrics = self.registry.metadata(old).get("metrics", {}) if old else {}
        self._swapped_event(
            "rollback", by, old, target, old_metrics, self.registry.metadata(target).get("metrics", {})
        )
        return target

    def _swapped_event(
        self,
        trigger: str,
        by: str,
        old: str | None,
        new: str,
        old_metrics: dict[str, Any],
        new_metrics: dict[str, Any],
    ) -> None:
        self.on_event(
            Event(
                EventKind.MODEL_SWAPPED,
                _utcnow(),
                {
                    "trigger": trigger,
                    "by": by,
                    "old_version": old,
                    "new_version": new,
                    "old_metrics": old_metrics,
                    "new_metrics": new_metrics,
                },
                f"model {old or '-'} -> {new} ({trigger}, by {by})",
            )
        )

    def _finish(self, outcome: Future[RetrainOutcome], result: RetrainOutcome, failed: bool) -> None:
        self.last_failed = failed
        if not failed:
            self.last_success = self.last_attempt
        self._running.clear()
        self.on_progress("done" if not failed else "failed", 100.0)
        outcome.set_result(result)


def _process_pool(progress_queue: Any) -> Executor:
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(progress_queue,),
    )


def _utcnow() -> datetime:
    from trading.timezones import utc_now

    return utc_now()


SMC_ONLY_NOTE = ": trading SMC-only (ML gates off) until a model is trained"


def ensure_models(
    registry: ModelRegistry, bars: pl.DataFrame | None, train_if_missing: bool, min_bars: int = 5000
) -> tuple[Any, str | None]:
    """Startup: the active bundle, or train one from `bars`, or (None, warning) -> trade SMC-only."""
    from models.registry import RegistryError

    try:
        bundle = registry.load_active()
    except (RegistryError, ValueError, OSError) as exc:  # a missing or corrupt version, pointer or metadata
        bundle, problem = (
            None,
            str(exc) if isinstance(exc, RegistryError) else f"model registry unreadable: {exc}",
        )
    else:
        problem = "no trained model"
    if bundle is not None:
        return bundle, None
    if train_if_missing and bars is not None and bars.height >= min_bars:
        from models.training import train_models

        report = train_models(bars, registry.root, registry=registry, triggered_by="startup")
        if report.activated:
            return registry.load_active(), None
        problem = f"startup training produced no usable model: {report.activation_reason}"
    elif train_if_missing:
        problem += f" and too few bars to train one (need {min_bars})"
    return None, f"{problem}{SMC_ONLY_NOTE}"
