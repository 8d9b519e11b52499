"""The SMC setup's confidence, worked out once per hit code (`smc_signal._confidence`), is the sum of its
parts in the rule's order for every code and trend."""

from __future__ import annotations

from trading.smc_signal import _confidence


def test_setup_confidence_by_hit_code_is_the_sum_of_its_parts() -> None:
    for trend in (False, True):
        for code in range(32):
            parts = [0.40, 0.15 * trend, 0.12 * bool(code & 3), 0.08 * bool(code & 4)]
            parts += [0.10 * bool(code & 8), 0.10 * bool(code & 16)]
            total = 0.0
            for p in parts:
                total += p
            assert _confidence(trend, code) == round(min(total, 0.85), 2), (trend, code)
