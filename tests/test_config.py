"""Settings: defaults, env and .env overrides, lists, one-line errors, mapping, secrets kept out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Settings, SettingsError, env_example, load_settings
from trading.parameters import GATE_NAMES, StrategyParams
from trading.risk.modes import RiskLimits
from trading.timezones import ServerClock

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456789:AAH-very-secret-token_value"
PASSWORD = "hunter2-Pa55word"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the host's environment and no stray .env: each test starts from defaults."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(**overrides: object) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(None, **overrides)
    return str(info.value).splitlines()


# ---------------------------------------------------------------- defaults and sources


def test_defaults_with_no_env_and_no_file() -> None:
    s = load_settings()  # ".env" absent in the empty cwd: fine
    assert s.broker == "paper" and s.symbol == "XAUUSD" and s.magic == 150015
    assert s.order_comment == "xau-bot" and s.server_tz == "NY+7"
    assert s.mt5_login is None and s.mt5_password is None and s.mt5linux_port == 18812
    assert s.paper_balance == 5000.0 and s.paper_feed == "synthetic" and s.paper_seed == 7
    assert s.telegram_token is None and s.telegram_allowed_users == [] and s.notify_chat_id is None
    assert s.database_path == Path("data/xaubot.db") and s.models_dir == Path("data/models")
    assert s.disabled_gates == ["h1_bias", "hours_9_21"]
    assert s.quiet_notifications == [] and s.market_update_minutes == 30 and s.retrain_hour_wib == 5
    assert s.server_clock == ServerClock.parse("NY+7")


def test_empty_dotenv_gives_defaults(tmp_path: Path) -> None:
    env = tmp_path / "empty.env"
    env.write_text("", encoding="utf-8")
    assert load_settings(env) == load_settings(None)


def test_env_overrides_file_and_overrides_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SYMBOL=XAUUSDm\nRISK_PER_TRADE_PCT=0.5\nMAGIC=42\nUNRELATED=1\n")
    s = load_settings()
    assert (s.symbol, s.risk_per_trade_pct, s.magic) == ("XAUUSDm", 0.5, 42)
    monkeypatch.setenv("RISK_PER_TRADE_PCT", "2")
    monkeypatch.setenv("broker", "dry-run")  # names are case-insensitive
    s = load_settings()
    assert s.risk_per_trade_pct == 2.0 and s.broker == "dry-run" and s.price_broker == "mt5"
    assert load_settings(risk_per_trade_pct=1.5).risk_per_trade_pct == 1.5


def test_comma_and_json_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_ALLOWED_USERS", " 111, 222 ,111")
    monkeypatch.setenv("DISABLED_GATES", "H1_BIAS,spread_limit")
    monkeypatch.setenv("QUIET_NOTIFICATIONS", "sl_moved,info")
    s = load_settings(None)
    assert s.telegram_allowed_users == [111, 222]
    assert s.notify_chat_id == 111
    assert s.disabled_gates == ["h1_bias", "spread_limit"]
    assert s.quiet_notifications == ["sl_moved", "info"]
    monkeypatch.setenv("TELEGRAM_ALLOWED_USERS", "[333, 444]")
    monkeypatch.setenv("DISABLED_GATES", '["cooldown"]')
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "-100123")
    s = load_settings(None)
    assert s.telegram_allowed_users == [333, 444] and s.disabled_gates == ["cooldown"]
    assert s.notify_chat_id == -100123


def test_all_gates_on_and_empty_optionals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISABLED_GATES", "none")
    monkeypatch.setenv("MT5_LOGIN", "")
    monkeypatch.setenv("LOG_FILE", " ")
    s = load_settings(None)
    assert s.disabled_gates == [] and s.mt5_login is None and s.log_file is None
    monkeypatch.setenv("DISABLED_GATES", "")
    assert load_settings(None).disabled_gates == []


def test_booleans_literals_and_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_MODEL", "yes")
    monkeypatch.setenv("HOURLY_ANALYSIS", "0")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("BROKER", "mt5linux")
    s = load_settings(None)
    assert s.require_model is True and s.hourly_analysis is False and s.log_level == "DEBUG"
    assert s.broker == "mt5linux" and s.price_broker == "mt5linux"


def test_replay_file_accepted_when_present(tmp_path: Path) -> None:
    bars = tmp_path / "bars.parquet"
    bars.write_bytes(b"x")
    s = load_settings(None, paper_feed="replay", paper_replay_file=str(bars), paper_replay_speed=600)
    assert s.paper_replay_file == bars and s.paper_replay_speed == 600.0


def test_news_calendar_file_or_url(tmp_path: Path) -> None:
    cal = tmp_path / "cal.json"
    cal.write_text("[]")
    assert load_settings(None, news_calendar=str(cal)).news_calendar == str(cal)
    url = "https://example.test/cal.json?key=abc"
    assert load_settings(None, news_calendar=url).news_calendar == url


# ---------------------------------------------------------------- one line per problem


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"risk_per_trade_pct": 7}, "RISK_PER_TRADE_PCT: must be > 0 and <= 5 (got 7)"),
        ({"risk_per_trade_pct": 0}, "RISK_PER_TRADE_PCT: must be > 0 and <= 5 (got 0)"),
        ({"daily_loss_pct": 5, "total_loss_pct": 4}, "TOTAL_LOSS_PCT: must be >= DAILY_LOSS_PCT (5) (got 4)"),
        ({"min_lot": 0.05, "max_lot": 0.02}, "MAX_LOT: must be >= MIN_LOT (0.05) (got 0.02)"),
        ({"max_positions": 0}, "MAX_POSITIONS: must be >= 1 and <= 20 (got 0)"),
        ({"protected_at": 1}, "PROTECTED_AT: must be > 0 and < 1 (got 1)"),
        ({"mt5linux_port": 70000}, "MT5LINUX_PORT: must be >= 1 and <= 65535 (got 70000)"),
        ({"mt5linux_port": "http"}, "MT5LINUX_PORT: must be a whole number (got http)"),
        ({"paper_replay_speed": 0}, "PAPER_REPLAY_SPEED: must be > 0 (got 0)"),
        ({"paper_balance": "lots"}, "PAPER_BALANCE: must be a number (got lots)"),
        ({"paper_feed": "replay"}, "PAPER_REPLAY_FILE: required when PAPER_FEED=replay"),
        (
            {"paper_feed": "replay", "paper_replay_file": "nope.parquet"},
            "PAPER_REPLAY_FILE: file not found: nope.parquet",
        ),
        ({"retrain_hour_wib": 24}, "RETRAIN_HOUR_WIB: must be >= 0 and <= 23 (got 24)"),
        ({"broker": "live"}, "BROKER: must be one of 'paper', 'mt5', 'mt5linux' or 'dry-run' (got live)"),
        ({"order_comment": "x" * 32}, "ORDER_COMMENT: must be at most 31 characters (got 32 characters)"),
        ({"symbol": "  "}, "SYMBOL: must not be empty"),
        ({"hourly_analysis": "maybe"}, "HOURLY_ANALYSIS: must be true or false (got maybe)"),
        ({"log_level": "loud"}, "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got loud)"),
        ({"mt5_login": 5, "mt5_server": "Demo"}, "MT5_PASSWORD: required when MT5_LOGIN is set"),
        ({"mt5_login": 5, "mt5_password": "x"}, "MT5_SERVER: required when MT5_LOGIN is set"),
        ({"mt5_login": 0}, "MT5_LOGIN: must be > 0 (got 0)"),
        ({"telegram_chat_id": 0}, "TELEGRAM_CHAT_ID: must not be 0 (a user id, or a negative group id)"),
        (
            {"telegram_api_url": "ftp://x.test"},
            "TELEGRAM_API_URL: must be an http:// or https:// URL (got ftp://x.test)",
        ),
        ({"news_calendar": "missing.csv"}, "NEWS_CALENDAR: file not found: missing.csv"),
        (
            {"quiet_notifications": "trade_opened,boom"},
            "QUIET_NOTIFICATIONS: unknown event kind(s) boom; known:",
        ),
        ({"telegram_allowed_users": "1,bob"}, "TELEGRAM_ALLOWED_USERS: not a user id: 'bob'"),
        ({"telegram_allowed_users": "-5"}, "TELEGRAM_ALLOWED_USERS: user ids are positive numbers (got -5)"),
        ({"server_tz": "Mars/Olympus"}, "SERVER_TZ: server time zone 'Mars/Olympus' is not 'NY+7'"),
    ],
)
def test_each_error_is_one_line_naming_the_variable(overrides: dict[str, object], expected: str) -> None:
    lines = problems(**overrides)
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]


def test_unknown_gate_lists_the_known_names() -> None:
    (line,) = problems(disabled_gates="h1_bias,warp_drive")
    assert line.startswith("DISABLED_GATES: unknown gate(s) warp_drive; known gates: ")
    assert all(name in line for name in GATE_NAMES)


def test_several_problems_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_POSITIONS", "99")
    monkeypatch.setenv("BROKER", "ib")
    lines = problems(paper_leverage=0)
    assert sorted(line.split(":")[0] for line in lines) == ["BROKER", "MAX_POSITIONS", "PAPER_LEVERAGE"]


def test_token_without_allowed_users() -> None:
    (line,) = problems(telegram_token=TOKEN)
    assert line == "TELEGRAM_ALLOWED_USERS: required when TELEGRAM_TOKEN is set (nobody could use the bot)"
    assert TOKEN not in line


def test_missing_explicit_env_file_and_unknown_override() -> None:
    with pytest.raises(SettingsError, match=r"^ENV_FILE: file not found: nowhere\.env$"):
        load_settings("nowhere.env")
    with pytest.raises(SettingsError, match=r"^RISK: not a setting$"):
        load_settings(None, risk=3)


# ---------------------------------------------------------------- secrets never leak


def test_secrets_do_not_leak_when_another_field_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_ALLOWED_USERS", "111")
    monkeypatch.setenv("MT5_LOGIN", "5551234")
    monkeypatch.setenv("MT5_PASSWORD", PASSWORD)
    monkeypatch.setenv("MT5_SERVER", "Demo")
    monkeypatch.setenv("RISK_PER_TRADE_PCT", "9")
    with pytest.raises(SettingsError) as info:
        load_settings(None, max_lot=0.001)
    text = str(info.value) + repr(info.value)
    assert "RISK_PER_TRADE_PCT" in text and "MAX_LOT" in text
    assert TOKEN not in text and PASSWORD not in text and "secret" not in text.lower()
    assert info.value.__cause__ is None and info.value.__context__ is None  # no chained ValidationError


def test_malformed_token_is_not_echoed() -> None:
    bad = "not a token SUPERSECRET"
    (line,) = problems(telegram_token=bad, telegram_allowed_users=[1])
    assert line.startswith("TELEGRAM_TOKEN: does not look like a bot token")
    assert "SUPERSECRET" not in line


def test_repr_and_describe_hide_secrets() -> None:
    s = load_settings(
        None,
        telegram_token=TOKEN,
        telegram_allowed_users="111,222",
        mt5_login=5551234,
        mt5_password=PASSWORD,
        mt5_server="Broker-Demo",
        broker="mt5",
        telegram_api_url="http://user:pw@127.0.0.1:8081/",
        news_calendar="https://cal.test/feed.json?apikey=KEY123",
    )
    assert s.telegram_token is not None and s.telegram_token.get_secret_value() == TOKEN
    described = dict(s.describe())
    blob = repr(s) + str(s) + repr(s.describe())
    for secret in (TOKEN, PASSWORD, "pw@", "KEY123"):
        assert secret not in blob
    assert "5551234" not in repr(s.describe())  # the account number stays out of chat messages
    assert described["Telegram"] == "token set, 2 allowed user(s), API http://127.0.0.1:8081"
    assert described["MT5"] == "server Broker-Demo, login set, password set"
    assert described["News"].startswith("https://cal.test; 15 min before, 30 after (45 after FOMC)")
    assert described["Broker"] == "mt5"
    assert s.telegram_api_url == "http://user:pw@127.0.0.1:8081"  # trailing slash dropped


def test_describe_defaults() -> None:
    d = dict(load_settings(None).describe())
    assert d["Broker"] == "paper, synthetic (seed 7), start balance 5,000.00, 1:100"
    assert d["Telegram"] == "token not set, 0 allowed user(s)"
    assert d["Risk"] == "1% per trade, daily limit 3%, total 10%"
    assert d["Positions"] == "max 2, lot 0.01-0.02, cooldown 300 s"
    assert d["Gates off"] == "h1_bias, hours_9_21"
    assert d["News"] == "off (no calendar)"
    assert "MT5" not in d


# ---------------------------------------------------------------- mapping onto the engine's records


def test_limits_mapping() -> None:
    s = load_settings(
        None,
        risk_per_trade_pct=0.5,
        daily_loss_pct=2,
        total_loss_pct=8,
        max_positions=3,
        protected_at=0.7,
        recovery_after_losses=4,
        risk_cooldown_minutes=90,
        min_lot=0.02,
        max_lot=0.1,
    )
    assert s.limits() == RiskLimits(
        risk_per_trade_pct=0.5,
        daily_loss_pct=2.0,
        total_loss_pct=8.0,
        max_positions=3,
        protected_at=0.7,
        recovery_after_losses=4,
        cooldown_minutes=90,
        min_lot=0.02,
        max_lot=0.1,
    )
    assert load_settings(None).limits() == RiskLimits()  # defaults agree with the engine's


def test_strategy_params_mapping() -> None:
    s = load_settings(
        None,
        cooldown_seconds=150,
        max_loss_per_trade_pct=0.5,
        emergency_sl_pct=3,
        flash_crash_pct=2,
        max_spread_points=40,
        night_max_spread_points=30,
        golden_night_max_spread_points=90,
        require_model=True,
        disabled_gates="hours_9_21",
    )
    p = s.strategy_params()
    assert (p.cooldown_seconds, p.max_loss_pct, p.emergency_sl_pct, p.flash_crash_pct) == (150, 0.5, 3.0, 2.0)
    assert (p.max_spread_points, p.night_max_spread_points, p.golden_night_max_spread_points) == (40, 30, 90)
    assert p.require_model is True and p.disabled_gates == frozenset({"hours_9_21"})
    assert load_settings(None).strategy_params() == StrategyParams()  # defaults agree with the engine's


def test_blackout_rules_mapping() -> None:
    rules = load_settings(
        None, news_before_minutes=5, news_after_minutes=10, news_after_fomc_minutes=60
    ).blackout_rules()
    assert (rules.before_minutes, rules.after_minutes, rules.after_fomc_minutes) == (5, 10, 60)


def test_settings_are_frozen() -> None:
    s = load_settings(None)
    with pytest.raises(Exception, match="frozen"):
        s.symbol = "EURUSD"  # type: ignore[misc]


# ---------------------------------------------------------------- .env.example


def _example_vars(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if m := re.match(r"^#\s?([A-Z][A-Z0-9_]*)=(.*)$", line):
            found[m.group(1)] = m.group(2)
    return found


def test_env_example_lists_every_field_with_help() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert text == env_example(), "regenerate with: python -m bot.config > .env.example"
    assert set(_example_vars(text)) == {name.upper() for name in Settings.model_fields}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^# [A-Z][A-Z0-9_]*=", line):
            assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 10  # one line of help above each


def test_env_example_uncommented_gives_the_defaults(tmp_path: Path) -> None:
    values = _example_vars((ROOT / ".env.example").read_text(encoding="utf-8"))
    env = tmp_path / "example.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    assert load_settings(env) == load_settings(None)


def test_dotenv_typos_are_named_with_a_suggestion(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("RISK_PER_TRADE=2\nMAXLOT=0.5\nPYTHONPATH=/opt/x\nMAX_POSITIONS=1\n")
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert err.value.problems == [
        "RISK_PER_TRADE: not a setting (in .env); did you mean RISK_PER_TRADE_PCT?",
        "MAXLOT: not a setting (in .env); did you mean MAX_LOT?",
    ]
    env.write_text("PYTHONPATH=/opt/x\nMAX_POSITIONS=1\n")  # another tool's variable is not a typo
    assert load_settings(env).max_positions == 1
