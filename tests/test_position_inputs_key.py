"""`same_inputs`: the engine's `position_inputs` cache is kept across a take-profit or balance
rebuilt with the same value (a stop move, a sync), and dropped on any change that matters."""

from __future__ import annotations

from trading.domain import Side
from trading.parameters import StrategyParams
from trading.position_watch import same_inputs
from trading.risk.modes import RiskLimits


def _key(balance: float = 1000.0, tp: float = 2400.5, **objects: object) -> tuple[object, ...]:
    a, state = objects.get("a"), objects.get("state", STATE)
    return (
        a,
        state,
        balance,
        objects.get("params", P),
        LIMITS,
        0.1,
        tp,
        2390.25,
        objects.get("side", Side.BUY),
    )


P, LIMITS, STATE = StrategyParams(), RiskLimits(), object()  # (the risk state only by identity)


def test_numbers_by_value_objects_by_identity() -> None:
    base = _key()
    assert same_inputs(base, _key(balance=float("1000.0"), tp=float(str(2400.5))))  # type: ignore[arg-type]
    for other in (
        _key(balance=999.99),
        _key(tp=0.0),
        _key(params=StrategyParams()),  # an equal but new parameter set: a change
        _key(state=object()),
        _key(side=Side.SELL),
        _key(a=object()),
    ):
        assert not same_inputs(base, other)  # type: ignore[arg-type]


def test_a_zero_balance_keeps_its_sign() -> None:
    assert same_inputs(_key(balance=0.0), _key(balance=0.0))  # type: ignore[arg-type]
    assert not same_inputs(_key(balance=0.0), _key(balance=-0.0))  # type: ignore[arg-type]
