"""Approval registry: create, confirm, reject, expire, double-confirm, supersede."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trading.risk.approvals import ApprovalError, ApprovalRegistry, ApprovalStatus, RiskChange

NOW = datetime(2025, 6, 2, 5, 0, tzinfo=UTC)
CHANGE = RiskChange("limits", "risk per trade 1% -> 2%", {"risk_per_trade_pct": 2.0})


def test_approve_once_then_double_tap_does_nothing():
    reg = ApprovalRegistry(ttl=timedelta(minutes=5))
    a = reg.create(CHANGE, "user:1", "user asked", NOW)
    assert reg.pending(NOW) == [a]
    done = reg.resolve(a.id, True, "user:1", NOW + timedelta(seconds=10))
    assert done.status is ApprovalStatus.APPROVED and done.resolved_by == "user:1"
    with pytest.raises(ApprovalError, match="already approved"):
        reg.resolve(a.id, True, "user:2", NOW + timedelta(seconds=11))
    with pytest.raises(ApprovalError, match="already approved"):
        reg.resolve(a.id, False, "user:2", NOW + timedelta(seconds=11))
    assert reg.pending(NOW) == []


def test_reject():
    reg = ApprovalRegistry()
    a = reg.create(CHANGE, "u", "r", NOW)
    assert reg.resolve(a.id, False, "u", NOW).status is ApprovalStatus.REJECTED


def test_expiry_means_no():
    reg = ApprovalRegistry(ttl=timedelta(minutes=5))
    a = reg.create(CHANGE, "u", "r", NOW)
    later = NOW + timedelta(minutes=5)
    with pytest.raises(ApprovalError, match="expired"):
        reg.resolve(a.id, True, "u", later)
    assert reg.get(a.id).status is ApprovalStatus.EXPIRED


def test_expire_sweep_returns_overdue_once():
    reg = ApprovalRegistry(ttl=timedelta(minutes=1))
    a = reg.create(CHANGE, "u", "r", NOW)
    assert reg.expire(NOW) == []
    swept = reg.expire(NOW + timedelta(minutes=2))
    assert [x.id for x in swept] == [a.id]
    assert reg.expire(NOW + timedelta(minutes=3)) == []


def test_newer_request_of_same_kind_supersedes():
    reg = ApprovalRegistry()
    a = reg.create(CHANGE, "u", "r", NOW)
    b = reg.create(RiskChange("limits", "3%", {"risk_per_trade_pct": 3.0}), "u", "r", NOW)
    assert reg.pending(NOW) == [b]
    with pytest.raises(ApprovalError):
        reg.resolve(a.id, True, "u", NOW)


def test_unknown_id():
    with pytest.raises(ApprovalError, match="unknown"):
        ApprovalRegistry().resolve("nope", True, "u", NOW)
