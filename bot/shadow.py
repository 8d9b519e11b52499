"""The shadow challengers as the bot runs them: built at start-up, driven after each live step, and
changed from the chat (`/shadow add v007`, `/shadow add params NAME`, `/shadow drop N`).

`ShadowService` implements `handlers.services.ShadowControl`. It checks every request before it
changes anything (an unknown version, a parameter set that fails validation, more challengers than
allowed, a challenger identical to live or to another challenger: one line each) and keeps a
history of changes (who, when) beside the challengers. Its analyzer factory shares the bar's
analysis: a challenger that reads the bar with live's model takes live's analysis of that bar; two
challengers on the same stored model share one analysis (`trading.shadow.BarMemo`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from trading.analysis import MarketAnalysis
from trading.broker.paper import PaperBroker, PaperConfig
from trading.domain import Tick
from trading.engine import TradingEngine
from trading.expected_value import CONTRACT_SIZE
from trading.shadow import (
    LIVE_MODEL,
    Analyzer,
    BarMemo,
    ChallengerError,
    ChallengerSpec,
    H1Bias,
    ShadowBook,
    load_param_set,
    params_changes,
    params_to_dict,
)
from trading.shadow_compare import Challenger
from trading.shadow_stats import (
    Outcome,
    PairedDifference,
    StrategyStats,
    paired_by_day,
    strategy_stats,
    trading_days,
)
from trading.timezones import wib_date

log = logging.getLogger(__name__)
HISTORY = "changes.jsonl"


@dataclass(frozen=True, slots=True)
class StrategyLine:
    """One strategy in /shadow: live (number None) or a challenger."""

    number: int | None
    label: str
    started: datetime
    start_balance: float
    balance: float
    open_positions: int
    stats: StrategyStats
    vs_live: PairedDifference | None
    outcomes: tuple[Outcome, ...]
    errors: int = 0


@dataclass(frozen=True, slots=True)
class ShadowView:
    lines: tuple[StrategyLine, ...]  # live first
    now: datetime
    max_challengers: int
    step_p99_ms: float | None
    bar_p99_ms: float | None
    not_started: tuple[str, ...] = ()  # "#4 (model v002)": stored, could not start


def live_quote(engine: TradingEngine) -> Tick | None:
    """The quote the live step has just read (the challengers get the same one, no second broker call)."""
    return engine.last_tick


class ChallengerAnalyzer:
    """A challenger's bar analysis: live's own when it reads the bar with live's model and live has
    analysed this bar (with the H1 bias of its own gate, `trading.shadow.H1Bias`), else the shared
    analysis of its model version."""

    def __init__(self, service: ShadowService, spec: ChallengerSpec) -> None:
        self.service, self.spec = service, spec
        self.shared_with_live = 0

    def __call__(self, bars: pl.DataFrame) -> MarketAnalysis:
        svc = self.service
        live = svc.engine.analysis
        same_model = self.spec.model_version in (LIVE_MODEL, svc.live_model_version())
        same_h1 = svc.h1_bias(self.spec) == svc.h1_bias(None)
        if same_model and live is not None and bars.height and live.bar_time == bars["time"][-1]:
            self.shared_with_live += 1
            return live if same_h1 else svc.h1.apply(live, bars, svc.h1_bias(self.spec))
        return svc.memo_for(self.spec)(bars)


class ShadowService:
    def __init__(
        self,
        root: Path,
        engine: TradingEngine,
        *,
        registry: Any = None,
        live_slot: Any = None,
        analyzer_for: Any = None,
        queries: Any = None,
        journal: Any = None,
        params_dir: Path | None = None,
        paper: PaperConfig | None = None,
        max_challengers: int = 3,
        symbol: str = "XAUUSD",
        history: int = 1500,
    ) -> None:
        self.root = Path(root)
        self.engine = engine
        self.registry = registry
        self.live_slot = live_slot
        self.analyzer_for = analyzer_for  # (bundle or None, with_h1_bias) -> Analyzer
        self.queries = queries
        self.journal = journal
        self.params_dir = Path(params_dir) if params_dir else self.root / "params"
        self._memos: dict[tuple[str, bool], BarMemo] = {}
        self.h1 = H1Bias(history)  # the bars the analyzers read (ANALYSIS_HISTORY_BARS)
        self.promotions: Any = None  # bot.shadow_promotion.Promotions, when promotion is on
        self.backtests: Any = None  # bot.shadow_backtests.ChallengerBacktests, for /backtest ... challenger
        self._checked_hour: int | None = None
        self.book = ShadowBook(
            self.root,
            self._analyzer,
            engine.clock,
            paper=paper,
            symbol=symbol,
            max_challengers=max_challengers,
        )

    # ------------------------------------------------------------------ analysis sharing
    @property
    def max_challengers(self) -> int:
        return self.book.max_challengers

    def live_model_version(self) -> str | None:
        bundle = self.live_slot.current if self.live_slot is not None else None
        return getattr(bundle, "version", None)

    def h1_bias(self, spec: ChallengerSpec | None) -> bool:
        params = spec.strategy_params() if spec is not None else self.engine.params
        return params.gate_enabled("h1_bias")

    def _analyzer(self, spec: ChallengerSpec) -> Analyzer:
        return ChallengerAnalyzer(self, spec)

    def memo_for(self, spec: ChallengerSpec) -> BarMemo:
        version = (
            (self.live_model_version() or "none") if spec.model_version == LIVE_MODEL else spec.model_version
        )
        key = (version, self.h1_bias(spec))
        memo = self._memos.get(key)
        if memo is None:
            bundle = self.live_slot.current if spec.model_version == LIVE_MODEL and self.live_slot else None
            if spec.model_version != LIVE_MODEL:
                from models.registry import load_version

                bundle = load_version(self.registry, spec.model_version)
            memo = self._memos[key] = BarMemo(self.analyzer_for(bundle, key[1]))
        return memo

    # ------------------------------------------------------------------ driven by the live job
    async def start(self) -> list[str]:
        if isinstance(self.engine.broker, PaperBroker):  # a replay or dry run: every tick, not one a second
            self.book.follow(self.engine.broker)
        return await self.book.load(live_quote(self.engine))

    async def after_tick(self) -> None:
        await self.book.step(live_quote(self.engine))

    async def after_bar(self, window: pl.DataFrame) -> None:
        await self.book.bar(window)
        hour = int(self.engine.clock().timestamp() // 3600)
        if self.promotions is not None and self.book.runners and hour != self._checked_hour:
            self._checked_hour = hour  # once a market hour: the figures read the journal
            try:
                await self.promotions.check()
            except Exception:
                log.exception("promotion check failed")

    # ------------------------------------------------------------------ changes from the chat
    def resolve(self, model: str | None, params: str | None) -> Challenger:
        """What a request runs (a stored version, a parameter set or both), checked: ChallengerError
        (one line) for an unknown version, a set that fails validation, or a copy of live."""
        if not model and not params:
            raise ChallengerError("say what the challenger runs: v007, params NAME, or both")
        version = self._version(model) if model else LIVE_MODEL
        live_params = self.engine.params
        chosen = self._params(params) if params else live_params
        if version in (LIVE_MODEL, self.live_model_version()) and not params_changes(live_params, chosen):
            raise ChallengerError(
                "that challenger is identical to live (same model and parameters): nothing to compare"
            )
        return Challenger(version, params or "", chosen)

    async def add(self, *, model: str | None, params: str | None, by: str) -> ChallengerSpec:
        """A new challenger; ChallengerError (one line) and nothing changed when it cannot be."""
        if not model and not params:
            raise ChallengerError(
                "say what the challenger runs: /shadow add v007, /shadow add params NAME, or both"
            )
        if self.book.broken:
            raise ChallengerError(self.book.broken)
        if len(self.book.runners) + len(self.book.failed) >= self.book.max_challengers:
            raise ChallengerError(
                f"{self.book.max_challengers} challengers already run (the most allowed); "
                "drop one first with /shadow drop N"
            )
        wanted = self.resolve(model, params)
        version, chosen = wanted.model, wanted.params
        for spec in self.book.specs:
            if spec.model_version == version and spec.params == params_to_dict(chosen):
                raise ChallengerError(f"challenger #{spec.number} already runs the same model and parameters")
        account = self.engine.account
        spec = ChallengerSpec(
            number=self.book.next_number(),
            model_version=version,
            params_name=params or "",
            params=params_to_dict(chosen),
            limits=asdict(self.engine.limits),
            start_balance=account.balance if account else self.book.paper.balance,
            started=self.engine.clock(),
            added_by=by,
        )
        if version != LIVE_MODEL:
            try:
                self.memo_for(spec)
            except Exception as exc:
                raise ChallengerError(f"model {version} cannot be loaded: {exc}") from exc
        await self.book.add(spec)
        self.record("add", spec, by)
        return spec

    async def drop(self, number: int, by: str) -> ChallengerSpec:
        spec = await self.book.drop(number)
        self.record("drop", spec, by)
        return spec

    def backtest(
        self, days: int, requests: Sequence[tuple[str | None, str | None]], progress: Any
    ) -> Awaitable[Any]:
        """/backtest ... challenger ...: the strategy and these challengers on the bot's recent bars
        (bot.shadow_backtests); ValueError (one line) and nothing started when it cannot run."""
        if self.backtests is None:
            raise ChallengerError("backtests are not available in this run")
        return self.backtests.start(days, requests, progress)

    def history_analyzer(self, version: str, with_h1_bias: bool) -> Analyzer:
        """A new analyzer of a model version (LIVE_MODEL: live's) for a backtest, in its worker thread:
        nothing shared with the live loop's analyses."""
        bundle = self.live_slot.current if self.live_slot is not None else None
        if version != LIVE_MODEL:
            from models.registry import load_version

            bundle = load_version(self.registry, version)
        analyzer: Analyzer = self.analyzer_for(bundle, with_h1_bias)
        return analyzer

    def pending_promotions(self) -> list[Any]:
        if self.promotions is None:
            return []
        self.promotions.expire()
        return self.promotions.pending()

    def promotion(self, approval_id: str) -> Any:
        return self.promotions.approvals.get(approval_id) if self.promotions is not None else None

    async def resolve_promotion(self, approval_id: str, approve: bool, by: str) -> Any:
        from trading.risk.approvals import ApprovalError

        if self.promotions is None:
            raise ApprovalError("promotion is off")
        return await self.promotions.resolve(approval_id, approve, by)

    def _version(self, text: str) -> str:
        from models.registry import RegistryError, resolve_version

        if self.registry is None:
            raise ChallengerError("models are off: there is no stored version to run")
        try:
            return resolve_version(self.registry, text)
        except RegistryError as exc:
            raise ChallengerError(str(exc)) from exc

    def _params(self, name: str) -> Any:
        return load_param_set(self.params_dir, name, self.engine.params)

    def record(self, what: str, spec: ChallengerSpec, by: str) -> None:
        """One line of the challengers' history (who changed what, when)."""
        path = self.root / HISTORY
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(
                json.dumps(
                    {
                        "time": self.engine.clock().isoformat(),
                        "what": what,
                        "by": by,
                        "challenger": spec.to_json(),
                    }
                )
                + "\n"
            )

    # ------------------------------------------------------------------ figures
    async def view(self) -> ShadowView:
        now = self.engine.clock()
        runners = list(self.book.runners.values())
        since = min((r.spec.started for r in runners), default=self.engine.started)
        live_trades = await self._live_outcomes(since)
        account = self.engine.account
        live_balance = account.balance if account else 0.0
        live_start = live_balance - sum(t.profit for t in live_trades)
        lines = [
            StrategyLine(
                None,
                "live",
                since,
                live_start,
                live_balance,
                len(self.engine.positions),
                strategy_stats(live_trades, live_start),
                None,
                tuple(live_trades),
            )
        ]
        for r in runners:
            ours = r.outcomes()
            theirs = [t for t in live_trades if t.close_time >= r.spec.started]
            days = trading_days(wib_date(r.spec.started), wib_date(now), [*ours, *theirs])
            lines.append(
                StrategyLine(
                    r.spec.number,
                    r.spec.label,
                    r.spec.started,
                    r.spec.start_balance,
                    r.broker.balance,
                    len(r.engine.positions),
                    strategy_stats(ours, r.spec.start_balance),
                    paired_by_day(ours, theirs, days),
                    tuple(ours),
                    r.errors,
                )
            )
        times = self.book.times
        return ShadowView(
            tuple(lines),
            now,
            self.book.max_challengers,
            times.p("step", 99),
            times.p("bar", 99),
            tuple(f"#{s.number} ({s.label})" for s in self.book.failed.values()),
        )

    async def _live_outcomes(self, since: datetime) -> list[Outcome]:
        """Live's closed trades from the journal, each with the money it risked at its opening stop
        (the journal's first SL/TP row: a stop moved to break-even later does not shrink its R)."""
        if self.queries is None:
            return []
        out = []
        for t in await self.queries.closed_since(since):
            if t.is_open or t.close_time is None:
                continue
            trade = t.to_closed_trade()
            history = await self.journal.sl_tp_history(t.ticket) if self.journal is not None else []
            first_sl = history[0].sl if history and history[0].sl else t.sl
            risk = abs(t.open_price - first_sl) * t.volume * CONTRACT_SIZE if first_sl else 0.0
            out.append(Outcome(trade.close_time, trade.profit, risk))
        return out


async def build_shadow(app: Any) -> ShadowService:
    """The app's challengers, started from what the shadow folder holds."""
    from models.live import SlotRegime, SlotSignal
    from models.registry import ModelSlot
    from trading.analyzer import MarketAnalyzer

    s = app.settings

    def analyzer_for(bundle: Any, with_h1_bias: bool) -> Analyzer:
        slot = ModelSlot(bundle)
        return MarketAnalyzer(
            SlotRegime(slot), SlotSignal(slot), history=s.analysis_history_bars, with_h1_bias=with_h1_bias
        )

    paper = PaperConfig(
        leverage=getattr(s, "paper_leverage", 100),
        commission_per_lot=getattr(s, "paper_commission_per_lot", 0.0),
        slippage_points=getattr(s, "paper_slippage_points", 0),
    )
    home = Path(s.database_path).parent
    service = ShadowService(
        s.shadow_dir or home / "shadow",
        app.engine,
        registry=app.registry,
        live_slot=app.slot,
        analyzer_for=analyzer_for,
        queries=app.ctx.queries,
        journal=app.journal,
        params_dir=s.shadow_params_dir or home / "params",
        paper=paper,
        max_challengers=s.shadow_max_challengers,
        symbol=s.symbol,
        history=s.analysis_history_bars,
    )
    from bot.shadow_promotion import Promotions, live_params_override
    from trading.shadow_stats import PromotionRule

    override = live_params_override(service.root)
    if override is not None:
        app.engine.params, note = override
        app.notes.append(note)
    from bot.shadow_backtests import ChallengerBacktests

    service.backtests = ChallengerBacktests(service, app.ctx.backtester, s.analysis_history_bars)
    service.promotions = Promotions(
        service,
        PromotionRule(s.shadow_promote_min_trades, s.shadow_promote_min_days, s.shadow_promote_max_p),
        bus=app.bus,
    )
    for problem in await service.start():
        app.notes.append(problem)
    return service
