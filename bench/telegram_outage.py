"""Field check: the whole bot trades on a fast paper market while the local fake Bot API refuses
connections, then answers 500 (JSON), then 502 (an HTML page); afterwards every opened and closed
ticket in the journal must be in the chat, one by one or inside the catch-up summary.

Prints JSON: trades opened/closed during the run, tickets missing from the chat (must be empty),
messages and summaries sent, the outbox rows by status, the seconds from the end of the outage until
nothing waited, and the WARNING/ERROR lines logged (one per outage each for the notifier and polling).
`python bench/telegram_outage.py [--refuse 60] [--e500 10] [--e502 10] [--speed 3000]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# the whole API fails, polling too (the fake's default spares getUpdates)
EVERY = ["getUpdates", "sendMessage", "sendPhoto", "editMessageText", "answerCallbackQuery", "setMyCommands"]


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()[:160]}")


async def outage(args: argparse.Namespace, workdir: Path) -> dict:
    from bot.app import App
    from bot.config import load_settings
    from bot.transport import html_to_text
    from tests.fake_telegram import FakeTelegramServer

    server = FakeTelegramServer()
    await server.start()
    settings = load_settings(
        None,
        database_path=workdir / "x.db",
        models_dir=workdir / "models",
        paper_replay_speed=args.speed,
        market_update_minutes=0,
        hourly_analysis=False,
        daily_summary=False,
        auto_retrain=False,
        telegram_token=server.token,
        telegram_api_url=server.base_url,
        telegram_allowed_users=[42],
    )
    app = App(settings, console_input=False)
    await app.start()
    assert app.scheduler is not None  # start() built it
    app.scheduler.pause()  # the bench drives the trading job itself

    async def trade_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await app.trading_job.run()
            await asyncio.sleep(0.02)

    lines = Lines()
    logging.getLogger().addHandler(lines)
    try:
        await trade_for(2)
        await server.refuse_connections()
        await trade_for(args.refuse)
        await server.accept_connections()
        server.fail_all(500, "Internal Server Error", methods=EVERY)
        await trade_for(args.e500)
        server.fail_all(502, "Bad Gateway", html=True, methods=EVERY)
        await trade_for(args.e502)
        await server.heal()
        healed = time.monotonic()
        while app.notifier.courier.waiting and time.monotonic() - healed < 120:
            await asyncio.sleep(0.1)
        catch_up = time.monotonic() - healed
    finally:
        await app.shutdown("bench finished")
        logging.getLogger().removeHandler(lines)
        await server.stop()
    with sqlite3.connect(workdir / "x.db") as conn:
        opened = [r[0] for r in conn.execute("select ticket from trades order by id")]
        closed = [r[0] for r in conn.execute("select ticket from trades where status = 'closed' order by id")]
        outbox = dict(conn.execute("select status, count(*) from outbox group by status").fetchall())
    texts = [html_to_text(m.text or "") for m in server.sent_messages(42)]
    summaries = [t for t in texts if t.startswith("📬")]

    def named(ticket: int, heads: tuple[str, ...]) -> bool:
        alone = any(
            t.splitlines()[0].startswith(heads) and f"#{ticket}" in t.splitlines()[0] for t in texts if t
        )
        return alone or any(re.search(rf"#{ticket}\b", s) for s in summaries)

    return {
        "outage_s": {"refused": args.refuse, "500_json": args.e500, "502_html": args.e502},
        "trades_opened": len(opened),
        "trades_closed": len(closed),
        "missing_opens": [t for t in opened if not named(t, ("🟢", "🔴"))],
        "missing_closes": [t for t in closed if not named(t, ("✅", "❌", "➖"))],
        "messages": len(texts),
        "summaries": len(summaries),
        "outbox": outbox,
        "catch_up_s": round(catch_up, 1),
        "warnings_and_errors": lines.lines,
        "heads": [t.splitlines()[0][:60] for t in texts if t],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refuse", type=float, default=60.0, help="seconds of refused connections")
    parser.add_argument("--e500", type=float, default=10.0, help="seconds of 500 answers (JSON)")
    parser.add_argument("--e502", type=float, default=10.0, help="seconds of 502 answers (an HTML page)")
    parser.add_argument("--speed", type=float, default=3000.0, help="paper market replay speed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(outage(args, Path(tmp))), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
