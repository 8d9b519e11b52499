"""Settings from the environment and `.env` (pydantic-settings), checked before anything starts.

Variable names are the upper-case field names (`RISK_PER_TRADE_PCT=1.5`); lists are comma separated
(`TELEGRAM_ALLOWED_USERS=111,222`) or JSON. `load_settings()` turns every invalid value into one
line naming the variable and what is wrong; a token or password never appears in a message,
a repr or `describe()`. `python -m bot.config` prints the `.env.example` this module defines.

`Settings` is the one class the bot uses; its sections' fields and checks live beside it:
`bot.config_broker` (broker, MT5, paper), `bot.config_trading` (risk, gates, news),
`bot.config_jobs` (reports, retraining, shadow challengers); Telegram and files are here.
The problem lines are written by `bot.config_errors`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.config_broker import BrokerKind as BrokerKind
from bot.config_broker import BrokerSettings
from bot.config_errors import SECRET_FIELDS, SettingsError, env_file_typos, problem_line
from bot.config_jobs import REPORT_KINDS as REPORT_KINDS  # bot.notifier reads it here
from bot.config_jobs import JobSettings
from bot.config_trading import TradingSettings
from bot.config_values import host_only, split_list
from trading.news import BlackoutRules
from trading.parameters import StrategyParams
from trading.risk.modes import RiskLimits
from trading.timezones import ServerClock

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

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


class ChannelSettings(BaseModel):
    """Telegram, and the files the bot writes (a section of `Settings`)."""

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
        items = split_list(value)
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


# The sections in reverse: pydantic collects fields from the last base first, so `model_fields`
# (and `.env.example`, and the order validators see earlier fields in) runs broker -> shadow.
class Settings(JobSettings, TradingSettings, ChannelSettings, BrokerSettings, BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    # ------------------------------------------------------------------ rules over fields of several sections

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
                    f"must be an http:// or https:// URL (got {host_only(value) if is_url else value})"
                )
            return value.rstrip("/") if info.field_name == "telegram_api_url" else value
        if not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

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
            telegram += f", API {host_only(self.telegram_api_url)}"
        gates = ", ".join(self.disabled_gates) or "none"
        if self.news_calendar is None:
            news = "off (no calendar)"
        else:
            source = (
                host_only(self.news_calendar)
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
                value = host_only(value)  # URLs may carry credentials or API keys
            yield name, value


# ---------------------------------------------------------------------- loading


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Settings from overrides > environment > `env_file` > defaults; raise SettingsError on any problem.

    env_file=None reads no file; a missing default `.env` is fine, a missing explicit file is an error.
    """
    if env_file is not None and str(env_file) != ".env" and not Path(env_file).is_file():
        raise SettingsError(f"ENV_FILE: file not found: {env_file}")
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise SettingsError("\n".join(f"{name.upper()}: not a setting" for name in unknown))
    typos = env_file_typos(env_file, Settings.model_fields)
    if typos:
        raise SettingsError("\n".join(typos))
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        # Raised outside the except block: the ValidationError (which echoes inputs) is not chained.
        problems = [problem_line(dict(e), Settings.model_fields) for e in exc.errors(include_url=False)]
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
