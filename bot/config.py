"""Settings from the environment and `.env` (pydantic-settings), checked before anything starts.

Variable names are the upper-case field names (`RISK_PER_TRADE_PCT=1.5`); lists are comma separated
(`TELEGRAM_ALLOWED_USERS=111,222`) or JSON. `load_settings()` turns every invalid value into one
line naming the variable and what is wrong; a token or password never appears in a message,
a repr or `describe()`. `python -m bot.config` prints the `.env.example` this module defines.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from annotated_types import Ge, Gt, Le, Lt, MaxLen
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trading.events import EventKind
from trading.news import BlackoutRules
from trading.parameters import GATE_NAMES, OPTIONAL_GATES_OFF_BY_DEFAULT, StrategyParams
from trading.risk.modes import LIMIT_BOUNDS, RiskLimits
from trading.timezones import ServerClock

BrokerKind = Literal["paper", "mt5", "mt5linux", "dry-run"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_FIELDS = frozenset({"telegram_token", "mt5_password"})
MT5_COMMENT_MAX = 31

# Section headers of `.env.example`, keyed by the first field of each section.
_SECTIONS = {
    "broker": "Broker and instrument",
    "mt5_login": "MetaTrader 5 connection (mt5, mt5linux, dry-run)",
    "paper_balance": "Paper broker (simulated account)",
    "telegram_token": "Telegram",
    "database_path": "Files and logging",
    "risk_per_trade_pct": "Risk (limits follow the live balance; daily reset at 00:00 WIB)",
    "disabled_gates": "Entry gates and analysis",
    "news_calendar": "News blackout",
    "market_update_minutes": "Reports",
    "auto_retrain": "Models",
    "shadow_dir": "Shadow challengers (paper strategies beside live; /shadow)",
}


REPORT_KINDS = ("market_update", "hourly", "daily")  # the scheduled reports' switch names (bot.notifier)


class SettingsError(ValueError):
    """Invalid settings: the message has one line per problem, each naming the variable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.problems = message.splitlines()


def _split_list(value: Any) -> Any:
    """`a,b` or `["a","b"]` from the environment; Python lists pass through."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON list ({exc.msg})") from None
        return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


def _host_only(url: str) -> str:
    """scheme://host[:port] of a URL: no credentials, path or query (they may hold keys)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

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

    # --- Telegram ---
    telegram_token: SecretStr | None = Field(
        None, description="bot token from @BotFather (empty: console transport, no Telegram)"
    )
    telegram_allowed_users: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        validate_default=True,
        description="Telegram user ids allowed to use the bot, comma separated (required with a token)",
    )
    telegram_api_url: str | None = Field(
        None, description="custom Bot API server URL (empty: api.telegram.org)"
    )
    telegram_chat_id: int | None = Field(
        None, description="chat that receives notifications (empty: the first allowed user)"
    )

    # --- files and logging ---
    database_path: Path = Field(Path("data/xaubot.db"), description="SQLite journal file")
    models_dir: Path = Field(Path("data/models"), description="directory of trained model files")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_file: Path | None = Field(None, description="log file (empty: console only)")

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

    # ------------------------------------------------------------------ validators

    @field_validator(
        "mt5_login",
        "mt5_password",
        "mt5_server",
        "mt5_path",
        "paper_replay_file",
        "telegram_token",
        "telegram_api_url",
        "telegram_chat_id",
        "log_file",
        "news_calendar",
        "shadow_dir",
        "shadow_params_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

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

    @field_validator("telegram_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            left, sep, right = value.get_secret_value().strip().partition(":")
            if not (sep and left.isdigit() and right) or any(c.isspace() for c in right):
                raise ValueError(
                    "does not look like a bot token (expected '<digits>:<secret>' from @BotFather)"
                )
            value = SecretStr(value.get_secret_value().strip())
        return value

    @field_validator("telegram_allowed_users", mode="before")
    @classmethod
    def _users_list(cls, value: Any) -> Any:
        items = _split_list(value)
        if not isinstance(items, list):
            return items
        out = []
        for item in items:
            try:
                user = int(str(item).strip())
            except ValueError:
                raise ValueError(
                    f"not a user id: {str(item)[:30]!r} (expected numbers like 111,222)"
                ) from None
            if user <= 0:
                raise ValueError(f"user ids are positive numbers (got {user})")
            out.append(user)
        return out

    @field_validator("telegram_allowed_users")
    @classmethod
    def _users_with_token(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if info.data.get("telegram_token") is not None and not value:
            raise ValueError("required when TELEGRAM_TOKEN is set (nobody could use the bot)")
        return list(dict.fromkeys(value))

    @field_validator("telegram_api_url", "news_calendar")
    @classmethod
    def _url_shape(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        is_url = "://" in value
        if info.field_name == "telegram_api_url" or is_url:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"must be an http:// or https:// URL (got {_host_only(value) if is_url else value})"
                )
            return value.rstrip("/") if info.field_name == "telegram_api_url" else value
        if not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("telegram_chat_id")
    @classmethod
    def _chat_id(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("must not be 0 (a user id, or a negative group id)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            level = value.strip().upper()
            if level not in LOG_LEVELS:
                raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (got {value[:30]})")
            return level
        return value

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
        items = _split_list(value)
        return [str(v).strip().lower() for v in items] if isinstance(items, list) else items

    @field_validator("disabled_gates")
    @classmethod
    def _gates_known(cls, value: list[str]) -> list[str]:
        unknown = [g for g in value if g not in GATE_NAMES]
        if unknown:
            raise ValueError(f"unknown gate(s) {', '.join(unknown)}; known gates: {', '.join(GATE_NAMES)}")
        return list(dict.fromkeys(value))

    @field_validator("quiet_notifications", "muted_notifications", mode="before")
    @classmethod
    def _quiet_list(cls, value: Any) -> Any:
        items = _split_list(value)
        return [str(v).strip().lower() for v in items] if isinstance(items, list) else items

    @field_validator("quiet_notifications", "muted_notifications")
    @classmethod
    def _quiet_known(cls, value: list[str]) -> list[str]:
        known = [k.value for k in EventKind] + list(REPORT_KINDS)
        unknown = [k for k in value if k not in known]
        if unknown:
            raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return list(dict.fromkeys(value))

    # ------------------------------------------------------------------ views for the rest of the bot

    @property
    def server_clock(self) -> ServerClock:
        return ServerClock.parse(self.server_tz)

    @property
    def notify_chat_id(self) -> int | None:
        """Where notifications go: TELEGRAM_CHAT_ID, else the first allowed user, else nowhere."""
        if self.telegram_chat_id is not None:
            return self.telegram_chat_id
        return self.telegram_allowed_users[0] if self.telegram_allowed_users else None

    @property
    def price_broker(self) -> Literal["paper", "mt5", "mt5linux"]:
        """Which connection supplies prices: dry-run reads them from DRY_RUN_SOURCE."""
        return self.dry_run_source if self.broker == "dry-run" else self.broker

    def limits(self) -> RiskLimits:
        return RiskLimits(
            risk_per_trade_pct=self.risk_per_trade_pct,
            daily_loss_pct=self.daily_loss_pct,
            total_loss_pct=self.total_loss_pct,
            max_positions=self.max_positions,
            protected_at=self.protected_at,
            recovery_after_losses=self.recovery_after_losses,
            cooldown_minutes=self.risk_cooldown_minutes,
            min_lot=self.min_lot,
            max_lot=self.max_lot,
        )

    def strategy_params(self) -> StrategyParams:
        return StrategyParams(
            disabled_gates=frozenset(self.disabled_gates),
            flash_crash_pct=self.flash_crash_pct,
            require_model=self.require_model,
            cooldown_seconds=self.cooldown_seconds,
            max_spread_points=self.max_spread_points,
            night_max_spread_points=self.night_max_spread_points,
            golden_night_max_spread_points=self.golden_night_max_spread_points,
            emergency_sl_pct=self.emergency_sl_pct,
            max_loss_pct=self.max_loss_per_trade_pct,
        )

    def blackout_rules(self) -> BlackoutRules:
        return BlackoutRules(
            before_minutes=self.news_before_minutes,
            after_minutes=self.news_after_minutes,
            after_fomc_minutes=self.news_after_fomc_minutes,
        )

    def describe(self) -> list[tuple[str, str]]:
        """Key/value lines for the startup message; secrets only as "set"/"not set"."""

        def is_set(value: object) -> str:
            return "set" if value is not None else "not set"

        if self.broker == "paper":
            feed = (
                f"replay {self.paper_replay_file.name if self.paper_replay_file else '?'} ×{self.paper_replay_speed:g}"
                if self.paper_feed == "replay"
                else f"synthetic (seed {self.paper_seed})"
            )
            broker = f"paper, {feed}, start balance {self.paper_balance:,.2f}, 1:{self.paper_leverage}"
        elif self.broker == "dry-run":
            broker = f"dry-run (prices from {self.dry_run_source}, orders on paper)"
        else:
            broker = self.broker
        lines = [("Broker", broker)]
        if self.price_broker in ("mt5", "mt5linux"):
            lines.append(
                (
                    "MT5",
                    f"server {self.mt5_server or 'terminal default'}, login {is_set(self.mt5_login)}, "
                    f"password {is_set(self.mt5_password)}",
                )
            )
            if self.price_broker == "mt5linux":
                lines.append(("mt5linux", f"{self.mt5linux_host}:{self.mt5linux_port}"))
        clock = self.server_tz
        telegram = f"token {is_set(self.telegram_token)}, {len(self.telegram_allowed_users)} allowed user(s)"
        if self.telegram_api_url:
            telegram += f", API {_host_only(self.telegram_api_url)}"
        gates = ", ".join(self.disabled_gates) or "none"
        if self.news_calendar is None:
            news = "off (no calendar)"
        else:
            source = (
                _host_only(self.news_calendar)
                if "://" in self.news_calendar
                else Path(self.news_calendar).name
            )
            news = (
                f"{source}; {self.news_before_minutes} min before, {self.news_after_minutes} after "
                f"({self.news_after_fomc_minutes} after FOMC)"
            )
        updates = f"every {self.market_update_minutes} min" if self.market_update_minutes else "off"
        lines += [
            ("Symbol", f"{self.symbol} (magic {self.magic}, server clock {clock})"),
            ("Telegram", telegram),
            (
                "Risk",
                f"{self.risk_per_trade_pct:g}% per trade, daily limit {self.daily_loss_pct:g}%, "
                f"total {self.total_loss_pct:g}%",
            ),
            (
                "Positions",
                f"max {self.max_positions}, lot {self.min_lot:g}-{self.max_lot:g}, "
                f"cooldown {self.cooldown_seconds} s",
            ),
            (
                "Safety",
                f"max loss {self.max_loss_per_trade_pct:g}%/trade, emergency SL {self.emergency_sl_pct:g}%, "
                f"flash crash {self.flash_crash_pct:g}%",
            ),
            ("Model", "required" if self.require_model else "optional (SMC-only without one)"),
            ("Gates off", gates),
            ("News", news),
            (
                "Reports",
                f"market update {updates}, hourly {'on' if self.hourly_analysis else 'off'}, "
                f"daily summary {'on' if self.daily_summary else 'off'}",
            ),
            (
                "Retrain",
                f"daily at {self.retrain_hour_wib:02d}:00 WIB" if self.auto_retrain else "off",
            ),
            ("Database", str(self.database_path)),
        ]
        return lines

    def __repr_args__(self) -> Any:
        # SecretStr already masks itself; this is a second guard should a secret field change type.
        for name, value in super().__repr_args__():
            if value is not None and name in SECRET_FIELDS:
                value = "**********"
            elif value is not None and name in {"telegram_api_url", "news_calendar"} and "://" in value:
                value = _host_only(value)  # URLs may carry credentials or API keys
            yield name, value


# ---------------------------------------------------------------------- loading and error messages


def _env_name(loc: tuple[int | str, ...]) -> str:
    return str(loc[0]).upper() if loc else "SETTINGS"


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounds(name: str) -> str:
    field = Settings.model_fields.get(name)
    if field is None:
        return ""
    parts = []
    for m in field.metadata:
        if isinstance(m, Gt):
            parts.append(f"> {_num(m.gt)}")
        elif isinstance(m, Ge):
            parts.append(f">= {_num(m.ge)}")
        elif isinstance(m, Lt):
            parts.append(f"< {_num(m.lt)}")
        elif isinstance(m, Le):
            parts.append(f"<= {_num(m.le)}")
        elif isinstance(m, MaxLen):
            parts.append(f"at most {m.max_length} characters")
    return "must be " + " and ".join(parts) if parts else ""


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(error: dict[str, Any]) -> str:
    loc = error.get("loc", ())
    name = str(loc[0]) if loc else ""
    kind = error.get("type", "")
    secret = name in SECRET_FIELDS
    value = error.get("input")
    got = "" if secret else f" (got {_shown(value)})"
    if kind == "value_error":
        what = str(error.get("ctx", {}).get("error", error.get("msg", "")))
    elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        what = _bounds(name) + got
    elif kind in {"string_too_short", "too_short"}:
        what = "must not be empty"
    elif kind in {"string_too_long", "too_long"}:
        length = "" if secret or value is None else f" (got {len(value)} characters)"
        what = (_bounds(name) or error.get("msg", "")) + length
    elif kind in {"int_parsing", "int_from_float", "int_type"}:
        what = "must be a whole number" + got
    elif kind in {"float_parsing", "float_type", "finite_number"}:
        what = "must be a number" + got
    elif kind in {"bool_parsing", "bool_type"}:
        what = "must be true or false" + got
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        what = f"must be one of {expected}{got}"
    else:  # pydantic's own wording names the type problem but never echoes the input
        what = str(error.get("msg", kind))
    if len(loc) > 1:
        what = f"item {int(loc[1]) + 1 if isinstance(loc[1], int) else loc[1]}: {what}"
    return f"{_env_name(loc)}: {what}"


def env_file_typos(env_file: str | Path | None) -> list[str]:
    """One line per key of the .env file that is not a setting but looks like one.

    pydantic-settings ignores unknown keys (extra="ignore"), so `RISK_PER_TRADE=2` would silently
    trade at the default 1 %. Keys with no close setting name (another tool's variables) pass.
    """
    if env_file is None or not Path(env_file).is_file():
        return []
    from dotenv import dotenv_values

    names = [n.upper() for n in Settings.model_fields]
    problems = []
    for key in dotenv_values(env_file):
        upper = key.upper()
        if upper in names:
            continue
        near = difflib.get_close_matches(upper, names, n=1, cutoff=0.75)
        if near:
            problems.append(f"{key}: not a setting (in {Path(env_file).name}); did you mean {near[0]}?")
    return problems


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Settings from overrides > environment > `env_file` > defaults; raise SettingsError on any problem.

    env_file=None reads no file; a missing default `.env` is fine, a missing explicit file is an error.
    """
    if env_file is not None and str(env_file) != ".env" and not Path(env_file).is_file():
        raise SettingsError(f"ENV_FILE: file not found: {env_file}")
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise SettingsError("\n".join(f"{name.upper()}: not a setting" for name in unknown))
    typos = env_file_typos(env_file)
    if typos:
        raise SettingsError("\n".join(typos))
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        # Raised outside the except block: the ValidationError (which echoes inputs) is not chained.
        problems = [_problem(dict(e)) for e in exc.errors(include_url=False)]
    else:
        return settings
    raise SettingsError("\n".join(dict.fromkeys(problems)))


# ---------------------------------------------------------------------- .env.example


def _example_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | frozenset | set):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else f"{value:.1f}"
    return str(value)


def env_example() -> str:
    """The text of `.env.example`: every setting, commented out, with its default and one line of help."""
    lines = [
        "# xaubot settings. Copy to .env and uncomment what you change; environment variables win over this file.",
        "# Lists are comma separated (111,222) or JSON ([111, 222]). Empty = not set.",
    ]
    for name, field in Settings.model_fields.items():
        if name in _SECTIONS:
            lines += ["", f"# === {_SECTIONS[name]} ==="]
        default = field.get_default(call_default_factory=True)
        lines.append(f"# {field.description}")
        lines.append(f"# {name.upper()}={_example_value(default)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(env_example())
