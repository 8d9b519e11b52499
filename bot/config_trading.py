"""Settings: risk limits, entry gates and analysis, the news blackout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from bot.config_values import split_list
from trading.parameters import GATE_NAMES, OPTIONAL_GATES_OFF_BY_DEFAULT
from trading.risk.modes import LIMIT_BOUNDS


class TradingSettings(BaseModel):
    """What the bot may trade and how much (a section of `bot.config.Settings`)."""

    # --- risk ---
    risk_per_trade_pct: float = Field(
        1.0, **LIMIT_BOUNDS["risk_per_trade_pct"].field_args(), description="risk per trade, % of balance"
    )
    daily_loss_pct: float = Field(
        3.0,
        **LIMIT_BOUNDS["daily_loss_pct"].field_args(),
        description="daily loss limit, % of the day's start balance",
    )
    total_loss_pct: float = Field(
        10.0,
        **LIMIT_BOUNDS["total_loss_pct"].field_args(),
        description="total loss limit, % of the reference balance",
    )
    max_positions: int = Field(
        2, **LIMIT_BOUNDS["max_positions"].field_args(), description="open positions at most"
    )
    min_lot: float = Field(0.01, gt=0, le=100, description="smallest lot the bot trades")
    max_lot: float = Field(0.02, gt=0, le=100, description="largest lot the bot trades")
    cooldown_seconds: int = Field(300, ge=0, le=86400, description="pause between entries, seconds")
    risk_cooldown_minutes: int = Field(
        60, ge=0, le=10080, description="COOLDOWN mode after a limit-close or flash crash, minutes"
    )
    protected_at: float = Field(
        0.8, gt=0, lt=1, description="fraction of a limit used that switches to PROTECTED"
    )
    recovery_after_losses: int = Field(
        3, ge=1, le=100, description="consecutive losses that switch to RECOVERY"
    )
    approval_ttl_minutes: int = Field(
        10, ge=1, le=1440, description="minutes an approval request stays valid"
    )
    max_loss_per_trade_pct: float = Field(1.0, gt=0, le=50, description="max loss per trade, % of balance")
    emergency_sl_pct: float = Field(
        0.5,
        gt=0,
        le=50,
        description="broker-side emergency stop, % of balance "
        "(0.5: where the max-loss exit would close; trading/parameters.py)",
    )
    flash_crash_pct: float = Field(
        2.5, gt=0, le=50, description="price move, %, that counts as a flash crash"
    )
    max_spread_points: int = Field(
        60, ge=1, le=100000, description="spread limit for entries, points (daytime)"
    )
    night_max_spread_points: int = Field(
        50, ge=1, le=100000, description="spread limit, WIB 22:00-05:59, points"
    )
    golden_night_max_spread_points: int = Field(
        80, ge=1, le=100000, description="spread limit in golden time (20:00-23:59 WIB), points"
    )
    require_model: bool = Field(False, description="true: no entries without a trained model (else SMC-only)")

    # --- gates and analysis ---
    disabled_gates: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: sorted(OPTIONAL_GATES_OFF_BY_DEFAULT),
        validate_default=True,
        description="entry gates switched off, comma separated ('none' enables all)",
    )
    analysis_history_bars: int = Field(
        1500, ge=300, le=100000, description="M15 bars fetched for each analysis"
    )

    # --- news ---
    news_calendar: str | None = Field(
        None, description="economic calendar: a JSON/CSV file or an http(s) URL (empty: no news blackout)"
    )
    news_cache_path: Path = Field(
        Path("data/news_calendar.json"), description="where a downloaded calendar is cached"
    )
    news_before_minutes: int = Field(
        15, ge=0, le=1440, description="no entries this many minutes before news"
    )
    news_after_minutes: int = Field(30, ge=0, le=1440, description="no entries this many minutes after news")
    news_after_fomc_minutes: int = Field(45, ge=0, le=1440, description="same, after FOMC decisions")

    @field_validator("total_loss_pct")
    @classmethod
    def _total_covers_daily(cls, value: float, info: ValidationInfo) -> float:
        daily = info.data.get("daily_loss_pct")
        if daily is not None and value < daily:
            raise ValueError(f"must be >= DAILY_LOSS_PCT ({daily:g}) (got {value:g})")
        return value

    @field_validator("max_lot")
    @classmethod
    def _lot_band(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_lot")
        if low is not None and value < low:
            raise ValueError(f"must be >= MIN_LOT ({low:g}) (got {value:g})")
        return value

    @field_validator("disabled_gates", mode="before")
    @classmethod
    def _gates_list(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"none", "-"}:
            return []
        items = split_list(value)
        return [str(v).strip().lower() for v in items] if isinstance(items, list) else items

    @field_validator("disabled_gates")
    @classmethod
    def _gates_known(cls, value: list[str]) -> list[str]:
        unknown = [g for g in value if g not in GATE_NAMES]
        if unknown:
            raise ValueError(f"unknown gate(s) {', '.join(unknown)}; known gates: {', '.join(GATE_NAMES)}")
        return list(dict.fromkeys(value))
