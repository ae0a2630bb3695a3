from __future__ import annotations

import json
from typing import Any

from jepsy.checkers.exceptions import exceptions
from jepsy.checkers.stats import stats
from jepsy.core import noop_test
from jepsy.history import History


def h(*ops: tuple[Any, ...]) -> History:
    return History.from_dicts(
        {
            "process": o[0],
            "type": o[1],
            "f": o[2],
            "value": None,
            "error": o[3] if len(o) > 3 else None,
        }
        for o in ops
    )


def test_stats_counts_and_valid() -> None:
    hist = h(
        (0, "invoke", "read"),
        (0, "ok", "read"),
        (0, "invoke", "write"),
        (0, "fail", "write"),
        (1, "invoke", "write"),
        (1, "ok", "write"),
        (2, "invoke", "read"),  # pending: counts as info
        ("nemesis", "info", "start"),
    )
    r = stats().check(noop_test(), hist, {})
    assert r.valid is True
    d = r.details
    assert d["count"] == 4 and d["ok_count"] == 2 and d["info_count"] == 1
    assert d["by_f"]["write"] == {"count": 2, "ok_count": 1, "fail_count": 1, "info_count": 0}
    json.dumps(r.to_json())


def test_stats_invalid_when_an_f_never_succeeds() -> None:
    hist = h((0, "invoke", "read"), (0, "ok", "read"), (0, "invoke", "cas"), (0, "fail", "cas"))
    r = stats().check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["never_ok"] == ["cas"]
    assert stats().check(noop_test(), h(), {}).valid is True


def test_exceptions_grouped() -> None:
    hist = h(
        (0, "invoke", "read"),
        (0, "info", "read", "timeout"),
        (1, "invoke", "write"),
        (1, "fail", "write", ["not-leader", {"node": "n1"}]),
        (2, "invoke", "read"),
        (2, "info", "read", "timeout"),
        (3, "invoke", "read"),
        (3, "ok", "read"),
    )
    r = exceptions().check(noop_test(), hist, {})
    assert r.valid is True
    d = r.details
    assert d["error_count"] == 3 and d["distinct_count"] == 2
    first = d["exceptions"][0]
    assert first["error"] == "timeout" and first["count"] == 2
    assert first["types"] == {"info": 2}
    assert first["example"]["process"] == 0
    json.dumps(r.to_json())
