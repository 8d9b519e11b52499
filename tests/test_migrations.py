"""The Alembic revisions build exactly the ORM schema; upgrades are repeatable; the CLI env works."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, create_engine

from bot.store.migrate import MIGRATIONS_DIR, SchemaTooNewError, alembic_config, upgrade_database
from bot.store.schema import Base

ROOT = Path(__file__).resolve().parents[1]


def _diff(db: Path, metadata: MetaData) -> list:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return compare_metadata(ctx, metadata)
    finally:
        engine.dispose()


async def test_migrated_schema_equals_orm_metadata(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    await upgrade_database(f"sqlite+aiosqlite:///{db}")
    assert _diff(db, Base.metadata) == []


async def test_compare_detects_a_drift(tmp_path: Path) -> None:
    """Guard for the test above: a table the migrations lack shows up as a difference."""
    db = tmp_path / "m.db"
    await upgrade_database(f"sqlite+aiosqlite:///{db}")
    extra = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extra)
    Table("not_migrated", extra, Column("id", Integer, primary_key=True))
    diff = _diff(db, extra)
    assert [d[0] for d in diff] == ["add_table"]
    assert diff[0][1].name == "not_migrated"


async def test_upgrade_is_idempotent_and_stamps_head(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "m.db"
    db.parent.mkdir()
    url = f"sqlite+aiosqlite:///{db}"
    await upgrade_database(url)
    await upgrade_database(url)
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == [(head,)]
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


async def test_a_database_from_a_newer_bot_is_refused_clearly(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    await upgrade_database(f"sqlite+aiosqlite:///{db}")
    with sqlite3.connect(db) as conn:
        conn.execute("update alembic_version set version_num = '0099'")
    with pytest.raises(SchemaTooNewError, match="'0099' is unknown to this code"):
        await upgrade_database(f"sqlite+aiosqlite:///{db}")


def test_single_linear_history() -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    heads = script.get_heads()
    assert len(heads) == 1, heads
    revisions = [r.revision for r in script.walk_revisions()]
    assert revisions[-1] == "0001"
    assert "0002_decision_features" in revisions and revisions[0] == "0003_outbox"


def test_downgrade_to_base_then_up_again_with_a_sync_url(tmp_path: Path) -> None:
    """The env also runs from the CLI path: a sync URL and no connection handed in."""
    db = tmp_path / "cli.db"
    cfg = alembic_config(f"sqlite:///{db}")
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert names == {"alembic_version"}
    command.upgrade(cfg, "head")
    assert _diff(db, Base.metadata) == []


def test_async_url_through_cli_env(tmp_path: Path) -> None:
    db = tmp_path / "cli_async.db"
    command.upgrade(alembic_config(f"sqlite+aiosqlite:///{db}"), "head")
    assert _diff(db, Base.metadata) == []


def test_repo_alembic_ini_points_at_the_package() -> None:
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    location = Path(cfg.get_main_option("script_location") or "")
    assert location.resolve() == MIGRATIONS_DIR


@pytest.mark.parametrize("table", sorted(Base.metadata.tables))
def test_every_table_has_a_primary_key(table: str) -> None:
    assert Base.metadata.tables[table].primary_key.columns


async def test_0002_keeps_old_decisions_and_adds_setup_and_features(tmp_path: Path) -> None:
    """A journal written at 0001 upgrades in place: its decision rows survive with no setup/features."""
    db = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{db}"
    await upgrade_database(url, "0001")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into decisions (bar_time, action, reason, gates, created_at) "
            "values ('2026-01-05 10:00:00', 'skip', 'old', '[]', '2026-01-05 10:15:00')"
        )
    await upgrade_database(url)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select action, reason, setup, features from decisions").fetchall()
    assert rows == [("skip", "old", None, None)]


async def test_0003_adds_the_outbox_to_a_journal_with_data(tmp_path: Path) -> None:
    """A journal at 0002 upgrades in place: its rows stay, the outbox table is new and empty; down again drops it."""
    db = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{db}"
    await upgrade_database(url, "0002_decision_features")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into decisions (bar_time, action, reason, gates, created_at) "
            "values ('2026-01-05 10:00:00', 'skip', 'old', '[]', '2026-01-05 10:15:00')"
        )
    await upgrade_database(url)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from decisions").fetchone() == (1,)
        assert conn.execute("select count(*) from outbox").fetchone() == (0,)
    command.downgrade(alembic_config(f"sqlite:///{db}"), "0002_decision_features")
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "outbox" not in tables and "decisions" in tables
