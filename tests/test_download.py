"""`main.py download` against the fake MetaTrader5 module: bars and ticks by month, a gap, a refusal, a
resume, bad data from the broker, bad input (one line, nothing written)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import main
import research.download as D
from tests.fake_mt5 import RATES_DTYPE, TICKS_DTYPE, FakeMetaTrader5
from trading.broker.mt5 import MT5Broker

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "xauusd_m15.parquet"
NOW = datetime(2026, 1, 10, 12, 7)  # the broker's server time "now" in these tests


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture(scope="module")
def server_bars() -> pl.DataFrame:
    """The shared bars as they are on disk: naive broker server time."""
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return pl.read_parquet(SHARED)


def rates_of(frame: pl.DataFrame) -> np.ndarray:
    out = np.zeros(frame.height, dtype=RATES_DTYPE)
    out["time"] = frame["time"].dt.epoch("s").to_numpy()
    for c in ("open", "high", "low", "close", "tick_volume", "spread", "real_volume"):
        out[c] = frame[c].to_numpy()
    return out


def fake_with(rates: np.ndarray | None = None, ticks: np.ndarray | None = None) -> FakeMetaTrader5:
    mt5 = FakeMetaTrader5()
    mt5.margin_mode = 0  # a netting account is fine for reading history
    if rates is not None:
        mt5.rates[("XAUUSD", 15)] = rates
    if ticks is not None:
        mt5.tick_history["XAUUSD"] = ticks
    return mt5


def source(mt5: FakeMetaTrader5) -> MT5Broker:
    return MT5Broker(mt5, magic=1, sleep=_no_sleep, require_hedging=False, connect_attempts=1)


def request(kind: str, date_from: str, date_to: str | None, out: Path) -> D.DownloadRequest:
    return D.parse_request(kind, date_from, date_to, out, NOW)


def months_asked(mt5: FakeMetaTrader5, name: str = "copy_rates_range") -> list[str]:
    at = 2 if name == "copy_rates_range" else 1
    return [f"{c[1][at]:%Y-%m-%d}" for c in mt5.calls if c[0] == name]


def expected(server_bars: pl.DataFrame, lo: str, hi: str) -> pl.DataFrame:
    return server_bars.filter(
        (pl.col("time") >= datetime.fromisoformat(lo)) & (pl.col("time") < datetime.fromisoformat(hi))
    )


# ---- bars -------------------------------------------------------------------------------------------------


async def test_m15_download_writes_the_bars_files_schema_month_by_month(server_bars, tmp_path, capsys):
    mt5 = fake_with(rates_of(server_bars))
    out = tmp_path / "m15.parquet"
    report = await D.download(source(mt5), request("M15", "2025-07-01", "2025-09-30", out))
    progress = (
        capsys.readouterr()
    )  # piped: a plain line on stderr when the months are done, nothing on stdout
    assert " 3 of 3 months, " in progress.err and "(done)" in progress.err and progress.out == ""
    written = pl.read_parquet(out)
    assert written.schema == server_bars.schema
    assert written.equals(expected(server_bars, "2025-07-01", "2025-10-01"))
    assert report.months == ["2025-07", "2025-08", "2025-09"] and report.empty_months == []
    assert months_asked(mt5) == ["2025-07-01", "2025-08-01", "2025-09-01"]
    assert all(
        type(a) is datetime and a.tzinfo is not None
        for c in mt5.calls
        if c[0] == "copy_rates_range"
        for a in c[1][2:]
    )
    assert "added" in report.summary() and f"{written.height:,}" in report.summary()


async def test_a_month_without_data_is_a_gap_not_an_error(server_bars, tmp_path):
    no_august = server_bars.filter(pl.col("time").dt.month() != 8)
    mt5 = fake_with(rates_of(no_august))
    out = tmp_path / "m15.parquet"
    report = await D.download(source(mt5), request("M15", "2025-07-01", "2025-09-30", out))
    assert report.empty_months == ["2025-08"] and "no data for 2025-08" in report.summary()
    assert pl.read_parquet(out).equals(expected(no_august, "2025-07-01", "2025-10-01"))


async def test_resume_fetches_only_what_the_file_lacks_and_never_a_row_twice(server_bars, tmp_path):
    out = tmp_path / "m15.parquet"
    await D.download(
        source(fake_with(rates_of(server_bars))), request("M15", "2025-08-01", "2025-08-31", out)
    )
    held = pl.read_parquet(out)["time"]
    first, last = (int((t - datetime(1970, 1, 1)).total_seconds()) for t in (held.min(), held.max()))
    mt5 = fake_with(rates_of(server_bars))
    report = await D.download(source(mt5), request("M15", "2025-07-01", "2025-09-30", out))
    assert "2025-07" in report.months and "2025-09" in report.months and "2025-08" not in report.months
    asked = [tuple(int(a.timestamp()) for a in c[1][2:]) for c in mt5.calls if c[0] == "copy_rates_range"]
    assert asked and all(hi < first or lo > last for lo, hi in asked)  # nothing the file holds is asked again
    written = pl.read_parquet(out)
    assert written.equals(expected(server_bars, "2025-07-01", "2025-10-01"))
    assert written["time"].is_unique().all()
    again = await D.download(source(mt5), request("M15", "2025-07-01", "2025-09-30", out))
    assert again.months == [] and "nothing to download" in again.summary()


async def test_a_refusal_keeps_the_finished_months_and_the_rerun_continues(server_bars, tmp_path):
    mt5 = fake_with(rates_of(server_bars))
    original = mt5.copy_rates_range
    calls = {"n": 0}

    def refuse_the_second(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            mt5.error = (-1, "Terminal: Call failed")
            mt5.calls.append(("copy_rates_range", args, {}))
            return None
        return original(*args)

    mt5.copy_rates_range = refuse_the_second
    out = tmp_path / "m15.parquet"
    with pytest.raises(
        D.DownloadError, match=r"refused M15 bars for 2025-08: .*1 month\(s\) saved.*run the same"
    ):
        await D.download(source(mt5), request("M15", "2025-07-01", "2025-09-30", out))
    assert pl.read_parquet(out).equals(expected(server_bars, "2025-07-01", "2025-08-01"))
    report = await D.download(source(mt5), request("M15", "2025-07-01", "2025-09-30", out))
    assert report.months[0].startswith("2025-08") and report.months[-1] == "2025-09"
    assert pl.read_parquet(out).equals(expected(server_bars, "2025-07-01", "2025-10-01"))


async def test_a_refusal_on_the_first_month_writes_nothing(server_bars, tmp_path):
    mt5 = fake_with(rates_of(server_bars))
    mt5.none_from["copy_rates_range"] = (-1, "Terminal: Call failed")
    out = tmp_path / "m15.parquet"
    with pytest.raises(D.DownloadError, match="refused") as info:
        await D.download(source(mt5), request("M15", "2025-07-01", "2025-07-31", out))
    assert "saved" not in str(info.value) and not out.exists()


async def test_a_bad_bar_from_the_broker_is_refused_and_its_month_not_written(server_bars, tmp_path):
    rates = rates_of(server_bars)
    bad = int(np.searchsorted(rates["time"], int(datetime(2025, 8, 5, 10).timestamp() - 0)))  # any August row
    rates["high"][bad] = rates["low"][bad] - 1.0
    out = tmp_path / "m15.parquet"
    with pytest.raises(D.DownloadError, match=r"bad bar for 2025-08: .*high is below"):
        await D.download(source(fake_with(rates)), request("M15", "2025-07-01", "2025-09-30", out))
    assert pl.read_parquet(out)["time"].max() < datetime(2025, 8, 1)


async def test_prepending_earlier_months_keeps_the_order(server_bars, tmp_path):
    out = tmp_path / "m15.parquet"
    await D.download(
        source(fake_with(rates_of(server_bars))), request("M15", "2025-09-01", "2025-09-30", out)
    )
    mt5 = fake_with(rates_of(server_bars))
    report = await D.download(source(mt5), request("M15", "2025-07-01", "2025-09-30", out))
    assert report.months[-2:] == ["2025-08", "2025-07"]  # backwards, each one prepended
    assert pl.read_parquet(out).equals(expected(server_bars, "2025-07-01", "2025-10-01"))


def test_the_forming_bar_and_the_future_are_left_out():
    req = D.parse_request("M15", "2026-01-01", None, "x.parquet", NOW)
    assert req.end == datetime(2026, 1, 10, 12, 0)  # the 12:00 bar is still forming at 12:07
    assert D.parse_request("M1", "2026-01-01", "2026-02-01", "x.parquet", NOW).end == datetime(
        2026, 1, 10, 12, 7
    )
    assert D.parse_request("ticks", "2026-01-01", None, "x.parquet", NOW).end == NOW


def test_month_chunks():
    assert D.month_chunks(datetime(2025, 11, 15), datetime(2026, 2, 3)) == [
        (datetime(2025, 11, 15), datetime(2025, 12, 1)),
        (datetime(2025, 12, 1), datetime(2026, 1, 1)),
        (datetime(2026, 1, 1), datetime(2026, 2, 1)),
        (datetime(2026, 2, 1), datetime(2026, 2, 3)),
    ]


# ---- ticks ------------------------------------------------------------------------------------------------


def make_ticks(start: datetime, days: int, per_day: int = 50) -> np.ndarray:
    base = int((start - datetime(1970, 1, 1)).total_seconds()) * 1000
    msc = np.sort(
        np.concatenate([base + np.arange(days * per_day) * (86_400_000 // per_day), [base + 5, base + 5]])
    )
    out = np.zeros(len(msc), dtype=TICKS_DTYPE)
    out["time_msc"], out["time"] = msc, msc // 1000
    out["bid"] = 2400.0 + np.arange(len(msc)) * 0.01
    out["ask"] = out["bid"] + 0.2
    out["flags"] = 6
    out["volume"] = 1
    out["flags"][2] = 8  # a 'last' flag on one of the two ticks sharing base + 5 ms... merged by OR
    return out


async def test_ticks_download_schema_one_row_per_millisecond_and_resume(tmp_path):
    ticks = make_ticks(datetime(2025, 11, 20), days=20)
    mt5 = fake_with(ticks=ticks)
    out = tmp_path / "ticks.parquet"
    await D.download(source(mt5), request("ticks", "2025-11-01", "2025-11-30", out))
    first = pl.read_parquet(out)
    assert dict(first.schema) == D.file_schema("ticks")
    assert first["time_msc"].is_unique().all() and first["time_msc"].is_sorted()
    assert (
        first["time_msc"].max() < int((datetime(2025, 12, 1) - datetime(1970, 1, 1)).total_seconds()) * 1000
    )
    shared = first.filter(pl.col("time_msc") == int(ticks["time_msc"][1]))
    assert shared["volume"].to_list() == [2]
    report = await D.download(source(mt5), request("ticks", "2025-11-01", "2025-12-31", out))
    assert report.months == ["2025-12"]  # November ends with a tick on its last day: only December
    final = pl.read_parquet(out)
    assert final["time_msc"].is_unique().all() and final["time_msc"].is_sorted()
    assert final.height == len(np.unique(ticks["time_msc"]))


async def test_out_of_order_or_crossed_ticks_are_refused(tmp_path):
    ticks = make_ticks(datetime(2025, 11, 20), days=2)
    crossed = ticks.copy()
    crossed["ask"][10] = crossed["bid"][10] - 1.0
    out = tmp_path / "t.parquet"
    with pytest.raises(D.DownloadError, match="bad tick for 2025-11"):
        await D.download(source(fake_with(ticks=crossed)), request("ticks", "2025-11-01", "2025-11-30", out))
    backwards = ticks.copy()
    backwards["time_msc"][20] = backwards["time_msc"][5]
    with pytest.raises(D.DownloadError, match="out of order"):
        await D.download(
            source(fake_with(ticks=backwards)), request("ticks", "2025-11-01", "2025-11-30", out)
        )
    assert not out.exists()


async def test_a_file_of_another_kind_is_refused_untouched(server_bars, tmp_path):
    out = tmp_path / "m15.parquet"
    await D.download(
        source(fake_with(rates_of(server_bars))), request("M15", "2025-08-01", "2025-08-31", out)
    )
    before = out.read_bytes()
    with pytest.raises(D.DownloadError, match="holds bars"):
        await D.download(
            source(fake_with(ticks=make_ticks(datetime(2025, 9, 1), 2))),
            request("ticks", "2025-09-01", "2025-09-30", out),
        )
    with pytest.raises(D.DownloadError, match="not M1"):
        await D.download(
            source(fake_with(rates_of(server_bars))), request("M1", "2025-09-01", "2025-09-30", out)
        )
    assert out.read_bytes() == before


# ---- the command line ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2025-13-01"], "--from '2025-13-01' is not a date"),
        (["--from", "2025-08-01", "--to", "2025-07-01"], "is before --from"),
        (["--from", "2099-01-01"], "is in the future"),
        (["--from", "2025-08-01", "--out-csv"], None),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "x.parquet"
    args = ["download", "--timeframe", "M15", *argv]
    if message is None:  # the wrong suffix
        args = ["download", "--timeframe", "M15", "--from", "2025-08-01", "--out", str(tmp_path / "x.csv")]
        message = "must be a .parquet file"
    else:
        args += ["--out", str(out)]
    assert main.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_paper_broker_says_it_has_no_history(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BROKER", "paper")
    assert main.main(["download", "--timeframe", "M1", "--from", "2025-08-01", "--out", "m1.parquet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "paper broker has no broker history" in err and "\n" not in err
    assert not (tmp_path / "m1.parquet").exists()


def test_the_command_downloads_through_the_configured_broker(server_bars, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mt5 = fake_with(rates_of(server_bars))
    monkeypatch.setattr(D, "history_source", lambda settings: source(mt5))
    monkeypatch.setenv("SERVER_TZ", "NY+7")
    code = main.main(
        [
            "download",
            "--timeframe",
            "M15",
            "--from",
            "2025-09-01",
            "--to",
            "2025-09-30",
            "--out",
            "m15.parquet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert pl.read_parquet(tmp_path / "m15.parquet").equals(expected(server_bars, "2025-09-01", "2025-10-01"))
    assert "added" in capsys.readouterr().out
