"""Settings: the broker and instrument, the MetaTrader 5 connection and the paper broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from trading.timezones import ServerClock

BrokerKind = Literal["paper", "mt5", "mt5linux", "dry-run"]
MT5_COMMENT_MAX = 31


class BrokerSettings(BaseModel):
    """Where prices come from and orders go (a section of `bot.config.Settings`)."""

    # --- broker and instrument ---
    broker: BrokerKind = Field(
        "paper",
        description="paper (simulated account), mt5 (MetaTrader5 terminal on Windows), "
        "mt5linux (rpyc bridge to a terminal under Wine), dry-run (real MT5 prices, paper orders)",
    )
    symbol: str = Field("XAUUSD", min_length=1, description="symbol as the broker names it")
    magic: int = Field(150015, ge=0, le=2**32 - 1, description="magic number that marks this bot's orders")
    order_comment: str = Field(
        "xau-bot", max_length=MT5_COMMENT_MAX, description="order comment (MT5 allows at most 31 characters)"
    )
    server_tz: str = Field(
        "NY+7",
        description="broker server clock: NY+7 (New York + 7 h, follows US DST), UTC+2, or an IANA zone",
    )

    # --- MT5 connection ---
    mt5_login: int | None = Field(
        None, gt=0, description="MT5 account number (empty: the terminal's logged-in account)"
    )
    mt5_password: SecretStr | None = Field(
        None, validate_default=True, description="MT5 password (never printed or logged)"
    )
    mt5_server: str | None = Field(
        None, validate_default=True, description="MT5 trade server name, e.g. Broker-Demo"
    )
    mt5_path: str | None = Field(None, description="path to terminal64.exe (empty: the installed terminal)")
    mt5linux_host: str = Field("127.0.0.1", min_length=1, description="host of the mt5linux rpyc server")
    mt5linux_port: int = Field(18812, ge=1, le=65535, description="port of the mt5linux rpyc server")
    dry_run_source: Literal["mt5", "mt5linux"] = Field(
        "mt5", description="where BROKER=dry-run reads prices: mt5 or mt5linux"
    )

    # --- paper broker ---
    paper_balance: float = Field(5000.0, gt=0, description="starting balance of the paper account, USD")
    paper_leverage: int = Field(100, ge=1, le=3000, description="leverage of the paper account (100 = 1:100)")
    paper_commission_per_lot: float = Field(0.0, ge=0, description="commission per lot per side, USD")
    paper_slippage_points: int = Field(0, ge=0, le=10000, description="slippage on every fill, points")
    paper_feed: Literal["synthetic", "replay"] = Field(
        "synthetic", description="paper prices: synthetic (generated market) or replay (a bars file)"
    )
    paper_replay_file: Path | None = Field(
        None, validate_default=True, description="bars file (parquet/CSV, MT5 columns) for PAPER_FEED=replay"
    )
    paper_replay_speed: float = Field(
        60.0, gt=0, description="replay speed: simulated seconds per real second"
    )
    paper_seed: int = Field(7, ge=0, description="random seed of the synthetic market")

    @field_validator("symbol", "order_comment", "mt5_server", "mt5linux_host", "server_tz", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("server_tz")
    @classmethod
    def _server_tz(cls, value: str) -> str:
        ServerClock.parse(value)  # its ValueError already says what forms are accepted
        return value

    @field_validator("mt5_password", "mt5_server")
    @classmethod
    def _login_needs_credentials(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.data.get("mt5_login") is not None:
            raise ValueError("required when MT5_LOGIN is set")
        return value

    @field_validator("paper_replay_file")
    @classmethod
    def _replay_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if info.data.get("paper_feed") == "replay":
            if value is None:
                raise ValueError("required when PAPER_FEED=replay")
            if not value.is_file():
                raise ValueError(f"file not found: {value}")
        return value
