"""Regenerates the README samples: a /status reply and a /chart image, produced by the bot itself.

Runs the app on a paper replay of the shared real bars (or the synthetic market when the file is
absent) in console mode, with the models of the registry given as the first argument (if any), types /status and /chart into the console controller, and keeps what the
bot answered: docs/status.txt and docs/chart.png.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import App  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.transport import ConsoleTransport  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "xauusd_m15.parquet"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extra = {"paper_feed": "replay", "paper_replay_file": DATA} if DATA.exists() else {}
        settings = load_settings(
            None,
            database_path=Path(tmp) / "x.db",
            models_dir=Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "models",
            paper_replay_speed=3000,
            market_update_minutes=0,
            hourly_analysis=False,
            daily_summary=False,
            auto_retrain=False,
            **extra,
        )
        app = App(settings, console_input=False)
        await app.start()
        for _ in range(60):
            await app.trading_job.run()
            await asyncio.sleep(0.05)
        out = io.StringIO()
        transport: ConsoleTransport = app.console.session.transport
        transport.out = out
        await app.console.handle_line("/status")
        (ROOT / "docs" / "status.txt").write_text(out.getvalue().split("\n", 1)[1], encoding="utf-8")
        await app.console.handle_line("/chart 120")
        if transport.saved:
            shutil.copy(transport.saved[-1], ROOT / "docs" / "chart.png")
        await app.shutdown("samples written")


if __name__ == "__main__":
    asyncio.run(main())
