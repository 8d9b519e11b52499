"""/model (the active model version and its metrics) and /retrain (a manual run, one message edited in place)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiogram import Bot, Router
from aiogram.types import Message

from handlers.common import AuditNote, duration, edit_in_place, esc, reply, with_clock
from handlers.services import (
    ModelRegistryView,
    ModelSlotView,
    ProgressCallback,
    RetrainResult,
    Services,
    Trainer,
)

SHOWN_METRICS = ("auc", "holdout_auc", "accuracy", "log_loss", "brier", "ece", "n")
PROGRESS_EVERY = 2.0  # seconds between progress edits (Telegram dislikes rapid edits)


def metrics_lines(metrics: Mapping[str, Any]) -> list[str]:
    out = []
    for key in SHOWN_METRICS:
        value = metrics.get(key)
        if isinstance(value, float):
            out.append(f"{key} <code>{value:.3f}</code>")
        elif value is not None:
            out.append(f"{key} <code>{esc(value)}</code>")
    return out


@dataclass(frozen=True, slots=True)
class ModelReport:
    """What the bot trades with: the version loaded in the live loop, and the registry's pointer."""

    version: str | None  # loaded; None: SMC-only
    pointer: str | None  # the version the registry names active
    problem: str = ""  # why the pointer's version is not the one loaded ("" when they agree)
    metadata: Mapping[str, Any] = field(default_factory=dict)


def model_report(registry: ModelRegistryView | None, slot: ModelSlotView | None) -> ModelReport:
    """Read what is loaded from the live loop's slot (`ctx.models`), not from the registry's pointer: a
    pointer to a missing or corrupt version leaves the bot on SMC-only, and the slot's note says why.
    Without a slot (no live loop) the pointer is all there is."""
    try:
        pointer = registry.active_version() if registry is not None else None
        unreadable = ""
    except Exception as exc:
        pointer, unreadable = None, f"model registry unreadable: {exc}"
    meta: Mapping[str, Any]
    if slot is None:
        try:
            meta = registry.metadata(pointer) if registry is not None and pointer else {}
        except Exception as exc:
            meta, unreadable = {}, f"model registry unreadable: {exc}"
        return ModelReport(pointer, pointer, unreadable, meta)
    bundle = slot.current
    version = bundle.version if bundle is not None else None
    meta = dict(bundle.metadata) if bundle is not None else {}
    problem = unreadable
    if not problem and pointer != version:
        if version is None:
            problem = slot.note or f"version {pointer} is not loaded"
        else:
            problem = (
                f"the registry now names {pointer or 'no version'} active; the bot still runs {version} "
                "(restart to load it)"
            )
    return ModelReport(version, pointer, problem, meta)


def model_text(registry: ModelRegistryView | None, slot: ModelSlotView | None = None) -> str:
    report = model_report(registry, slot)
    version, meta = report.version, report.metadata
    if version is None:
        text = "🧠 No model: SMC-only."
        if report.problem:
            named = f"names {esc(report.pointer)} but " if report.pointer else ""
            text += f"\n⚠️ The registry {named}nothing is loaded: {esc(report.problem)}"
        return text
    recorded = meta.get("metrics")
    metrics: Mapping[str, Any] = recorded if isinstance(recorded, dict) else meta
    lines = [f"🧠 <b>MODEL</b> <code>{esc(version)}</code> (loaded)"]
    if report.problem:
        lines.append(f"⚠️ {esc(report.problem)}")
    if meta.get("created_at"):
        lines.append(f"Trained {esc(meta['created_at'])}")
    if meta.get("status"):
        lines.append(f"Status {esc(meta['status'])}")
    lines += metrics_lines(metrics) or ["no metrics recorded"]
    found = meta.get("edge")
    edge: Mapping[str, Any] = found if isinstance(found, dict) else {}
    lines.append(
        "Edge: demonstrated out of sample"
        if edge.get("demonstrated")
        else f"⚠️ No demonstrated edge out of sample{': ' + esc(edge['verdict']) if edge.get('verdict') else ''}"
    )
    return "\n".join(lines)


async def model(message: Message, ctx: Services) -> None:
    try:
        text = model_text(ctx.registry, ctx.models)
    except Exception as exc:  # a broken registry folder should not look like a bot crash
        text = f"🧠 Model registry unreadable: {esc(exc)}"
    await reply(message, with_clock(text, ctx.engine.snapshot().time))


def outcome_text(o: RetrainResult) -> str:
    if o.error:
        return f"❌ Retrain failed: {esc(o.reason)}"
    head = (
        f"✅ New model <code>{esc(o.version)}</code> is live"
        if o.accepted
        else f"⚠️ Model {esc(o.version or '—')} not put live: {esc(o.reason)}"
    )
    old = ", ".join(metrics_lines(o.old_metrics)) or "—"
    new = ", ".join(metrics_lines(o.new_metrics)) or "—"
    return f"{head}\nOld {esc(o.old_version or 'none')}: {old}\nNew: {new}\nTook {o.seconds:.0f} s"


async def retrain(message: Message, ctx: Services, bot: Bot, actor: str, audit: AuditNote) -> None:
    trainer = ctx.trainer
    if trainer is None:
        audit.result = "no trainer"
        await reply(message, "Models are disabled: there is no trainer to run.")
        return
    if trainer.running:
        audit.result = "already running"
        await reply(message, "A retrain is already running.")
        return
    short = await _too_few_bars(ctx, trainer)
    if short:
        audit.result = "too few bars"
        await reply(message, short)
        return
    progress: dict[str, Any] = {"stage": "starting", "pct": 0.0}
    previous = trainer.on_progress

    def on_progress(stage: str, pct: float) -> None:  # called from the trainer's thread
        progress.update(stage=stage, pct=pct)
        previous(stage, pct)

    trainer.on_progress = on_progress
    try:
        future = trainer.start("manual", by=actor)
    except RuntimeError as exc:
        trainer.on_progress = previous
        audit.result = str(exc)
        await reply(message, esc(exc))
        return
    status = await reply(message, "🔄 Retraining: starting…")
    audit.result = "started"
    task = asyncio.create_task(_follow(bot, status, future, progress, trainer, previous))
    ctx.retrain_task = task


def bars_wait_text(have: int, need: int, speed: float = 1.0) -> str:
    """How many bars a retrain lacks and how long until there are enough (an M15 bar per 15 open minutes)."""
    missing = need - have
    market = timedelta(minutes=15 * missing)
    text = (
        f"🧠 Not enough bars to retrain yet: it needs {need:,} closed M15 bars and the bot has {have:,} "
        f"({missing:,} to go). A bar closes every 15 minutes while the market is open: about "
        f"{duration(market)} of market time"
    )
    if speed > 1:
        text += f", or {duration(market / speed)} at this paper market's {speed:g}× speed"
    return text + ". The active model (or SMC-only) keeps trading meanwhile."


async def _too_few_bars(ctx: Services, trainer: Trainer) -> str:
    """The "not yet" answer before a run that would fail on too few bars; "" when there are enough."""
    if ctx.bars_available is None:  # no count of bars: the run itself says when there are too few
        return ""
    need = trainer.config.min_bars
    have = await asyncio.to_thread(ctx.bars_available)
    if have >= need:
        return ""
    speed = ctx.settings.paper_replay_speed if ctx.settings.broker == "paper" else 1.0
    return bars_wait_text(have, need, speed)


async def _follow(
    bot: Bot,
    status: Message,
    future: Future[Any],
    progress: dict[str, Any],
    trainer: Trainer,
    previous: ProgressCallback,
) -> None:
    """Edit the one status message while the run goes on, then show the outcome."""
    shown = ""
    started = time.monotonic()
    wrapped = asyncio.wrap_future(future)
    try:
        while not wrapped.done():
            text = f"🔄 Retraining: {esc(progress['stage'])} {progress['pct']:.0f}% · {time.monotonic() - started:.0f} s"
            if text != shown:
                shown = await edit_in_place(bot, status, text) or shown
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(wrapped), PROGRESS_EVERY)
        try:
            final = outcome_text(wrapped.result())
        except Exception as exc:
            final = f"❌ Retrain failed: {esc(exc)}"
        await edit_in_place(bot, status, final)
    finally:
        trainer.on_progress = previous


def make_router() -> Router:
    return Router(name="model")
