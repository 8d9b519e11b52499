"""`main.py backtest --challenger`: challengers beside the strategy on history, on the forward machinery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from research.shadow_backtest import parse_challenger, run_challengers
from trading.parameters import StrategyParams
from trading.shadow import LIVE_MODEL, ChallengerError
from trading.synthetic import generate_bars


def test_a_spec_names_a_version_a_param_file_or_both(tmp_path: Path) -> None:
    (tmp_path / "slow.json").write_text(json.dumps({"cooldown_seconds": 1800}))
    (tmp_path / "opt-proposal.json").write_text(json.dumps({"proposed": {"max_loss_frac": 0.4}}))
    base = StrategyParams()
    assert parse_challenger("v7", base)[:2] == ("v007", "")
    model, label, params = parse_challenger(f"v12+params:{tmp_path / 'slow.json'}", base)
    assert (model, label, params.cooldown_seconds) == ("v012", "slow", 1800)
    model, _, params = parse_challenger(f"params:{tmp_path / 'opt-proposal.json'}", base)
    assert model == LIVE_MODEL and params.max_loss_frac == 0.4
    with pytest.raises(ChallengerError, match="neither vNNN nor params"):
        parse_challenger("fast", base)
    with pytest.raises(ChallengerError, match="no parameter set"):
        parse_challenger(f"params:{tmp_path / 'missing.json'}", base)


async def test_history_with_a_challenger_gives_the_strategy_and_its_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.setattr(os, "fsync", lambda fd: None)
    (tmp_path / "none.json").write_text(json.dumps({"min_risk_reward": 100.0}))
    bars = generate_bars(700, seed=3)
    out = await run_challengers(
        bars,
        [f"params:{tmp_path / 'none.json'}"],
        balance=10_000.0,
        commission=0.0,
        ticks_per_bar=4,
        warmup=400,
    )
    assert out["strategy"]["trades"] > 0
    [c] = out["challengers"]
    assert c["label"] == "params none" and c["trades"] == 0 and c["errors"] == 0
    # never trading beats a losing strategy by exactly what the strategy lost, day by day
    assert c["vs_strategy"]["mean_per_day"] * c["vs_strategy"]["days"] == pytest.approx(
        -out["strategy"]["net"], abs=0.05
    )
    with pytest.raises(ChallengerError, match="needs --models-dir"):
        await run_challengers(bars, ["v001"], balance=1.0, commission=0.0, ticks_per_bar=4, warmup=400)
