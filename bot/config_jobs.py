"""Settings: the scheduled reports, the daily retrain and the shadow challengers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from bot.config_values import split_list
from trading.events import EventKind

REPORT_KINDS = ("market_update", "hourly", "daily")  # the scheduled reports' switch names (bot.notifier)


class JobSettings(BaseModel):
    """What runs beside trading: reports, retraining, challengers (a section of `bot.config.Settings`)."""

    # --- reports ---
    market_update_minutes: int = Field(
        30, ge=0, le=1440, description="market update every N minutes (0 = off)"
    )
    hourly_analysis: bool = Field(True, description="send the hourly analysis")
    daily_summary: bool = Field(True, description="send the daily summary at 00:00 WIB")
    quiet_notifications: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validate_default=True,
        description="message kinds (events, market_update, hourly, daily) sent without sound, comma separated",
    )
    muted_notifications: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validate_default=True,
        description="message kinds not sent at all, comma separated",
    )
    notify_report_gap_minutes: float = Field(
        5.0,
        ge=0,
        le=1440,
        description="real minutes between two routine reports of one kind (a fast paper market)",
    )
    notify_per_minute: int = Field(
        20,
        ge=1,
        le=60,
        description="messages a chat gets in any real minute; routine ones over it are skipped",
    )

    # --- models ---
    auto_retrain: bool = Field(True, description="retrain the models daily when enough new bars arrived")
    retrain_hour_wib: int = Field(5, ge=0, le=23, description="hour (WIB, 0-23) of the daily retrain check")
    min_bars_for_training: int = Field(2000, ge=500, le=1_000_000, description="M15 bars needed to train")

    # --- shadow challengers (bot/shadow.py) ---
    shadow_dir: Path | None = Field(
        None,
        description="challengers' paper accounts and records (empty: a 'shadow' folder beside DATABASE_PATH)",
    )
    shadow_params_dir: Path | None = Field(
        None,
        description="named parameter sets NAME.json (or an optimize "
        "proposal NAME-proposal.json) for /shadow add params NAME (empty: "
        "a 'params' folder beside DATABASE_PATH)",
    )
    shadow_max_challengers: int = Field(3, ge=0, le=10, description="challengers running at most")
    shadow_promote_min_trades: int = Field(
        30, ge=5, le=10000, description="trades a challenger needs before a promotion is proposed"
    )
    shadow_promote_min_days: int = Field(
        10, ge=2, le=365, description="trading days a challenger needs before a promotion is proposed"
    )
    shadow_promote_max_p: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="promotion needs the paired daily bootstrap's P(challenger not better) at most this",
    )
    shadow_new_models: bool = Field(
        True, description="true: a retrained model goes to shadow first, never straight to live"
    )

    @field_validator("quiet_notifications", "muted_notifications", mode="before")
    @classmethod
    def _quiet_list(cls, value: Any) -> Any:
        items = split_list(value)
        return [str(v).strip().lower() for v in items] if isinstance(items, list) else items

    @field_validator("quiet_notifications", "muted_notifications")
    @classmethod
    def _quiet_known(cls, value: list[str]) -> list[str]:
        known = [k.value for k in EventKind] + list(REPORT_KINDS)
        unknown = [k for k in value if k not in known]
        if unknown:
            raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return list(dict.fromkeys(value))
