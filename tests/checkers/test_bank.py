from __future__ import annotations

import json
from typing import Any

from jepsy.checkers.bank import bank
from jepsy.core import noop_test
from jepsy.history import History


def h(*reads: Any, transfers: int = 1) -> History:
    ds: list[dict[str, Any]] = []
    for _ in range(transfers):
        t = {"from": 0, "to": 1, "amount": 5}
        ds += [
            {"process": 0, "type": "invoke", "f": "transfer", "value": t},
            {"process": 0, "type": "ok", "f": "transfer", "value": t},
        ]
    for r in reads:
        ds += [
            {"process": 1, "type": "invoke", "f": "read", "value": None},
            {"process": 1, "type": "ok", "f": "read", "value": r},
        ]
    return History.from_dicts(ds)


def test_consistent_reads_valid() -> None:
    r = bank(total=20).check(noop_test(), h({"0": 10, "1": 10}, {"0": 5, "1": 15}), {})
    assert r.valid is True
    assert r.details["reads_count"] == 2 and r.details["total"] == 20
    json.dumps(r.to_json())


def test_wrong_total_and_negative() -> None:
    r = bank(total=20).check(noop_test(), h({"0": 10, "1": 11}, [[0, -5], [1, 25]]), {})
    assert r.valid is False
    assert r.details["error_types"] == {"wrong-total": 1, "negative-value": 1}
    first = r.details["first_error"]
    assert first["type"] == "wrong-total" and first["total"] == 21 and first["expected"] == 20
    ok_neg = bank(total=20, negative_balances_ok=True).check(noop_test(), h([[0, -5], [1, 25]]), {})
    assert ok_neg.valid is True


def test_total_from_spec_or_inferred() -> None:
    t = noop_test(spec={"total": 30})
    assert bank().check(t, h({"a": 10, "b": 10}), {}).valid is False
    r = bank().check(noop_test(), h({"a": 10, "b": 10}, {"a": 1, "b": 18}), {})
    assert r.valid is False
    assert r.details["total_inferred"] is True and r.details["total"] == 20


def test_nil_unexpected_account_and_no_reads() -> None:
    r = bank(total=10, accounts=[0, 1]).check(
        noop_test(), h({"0": None, "1": 10}, {"0": 5, "7": 5}), {}
    )
    assert r.valid is False
    assert r.details["error_types"] == {"nil-balance": 1, "unexpected-account": 1}
    assert bank(total=10).check(noop_test(), h(), {}).valid == "unknown"
    assert repr(bank(total=10)) == "bank(total=10, negative_balances_ok=False)"
