from __future__ import annotations

import json
from typing import Any

from jepsy.checkers.counter import counter
from jepsy.core import noop_test
from jepsy.history import History


def h(*ops: tuple[Any, ...]) -> History:
    return History.from_dicts(
        {"process": o[0], "type": o[1], "f": o[2], "value": o[3]} for o in ops
    )


def test_sequential_counter_valid() -> None:
    hist = h(
        (0, "invoke", "add", 1),
        (0, "ok", "add", 1),
        (0, "invoke", "add", 2),
        (0, "ok", "add", 2),
        (0, "invoke", "read", None),
        (0, "ok", "read", 3),
    )
    r = counter().check(noop_test(), hist, {})
    assert r.valid is True
    assert r.details["reads_count"] == 1
    assert r.details["final"]["lower"] == 3 and r.details["final"]["upper"] == 3
    json.dumps(r.to_json())


def test_read_too_high_or_low() -> None:
    hist = h(
        (0, "invoke", "add", 1),
        (0, "ok", "add", 1),
        (0, "invoke", "read", None),
        (0, "ok", "read", 5),
        (0, "invoke", "read", None),
        (0, "ok", "read", 0),
    )
    r = counter().check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["error_count"] == 2
    e = r.details["errors"][0]
    assert (e["lower"], e["value"], e["upper"]) == (1, 5, 1)


def test_concurrent_info_and_failed_adds() -> None:
    hist = h(
        (0, "invoke", "add", 5),
        (1, "invoke", "read", None),
        (0, "info", "add", 5),  # may or may not have happened
        (2, "invoke", "add", 7),
        (2, "fail", "add", 7),  # certainly did not happen
        (1, "ok", "read", 5),
        (1, "invoke", "read", None),
        (1, "ok", "read", 0),
        (1, "invoke", "read", None),
        (1, "ok", "read", 12),
    )
    r = counter().check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["error_count"] == 1
    assert r.details["errors"][0]["value"] == 12
    assert r.details["errors"][0]["upper"] == 5


def test_negative_deltas_widen_lower_bound() -> None:
    hist = h(
        (0, "invoke", "add", 10),
        (0, "ok", "add", 10),
        (0, "invoke", "add", -4),
        (1, "invoke", "read", None),
        (1, "ok", "read", 6),
        (1, "invoke", "read", None),
        (1, "ok", "read", 10),
        (0, "ok", "add", -4),
        (1, "invoke", "read", None),
        (1, "ok", "read", 10),  # the decrement has completed: must be 6
    )
    r = counter().check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["error_count"] == 1
    assert r.details["errors"][0]["lower"] == 6


def test_add_invoked_during_read_counts_towards_upper() -> None:
    hist = h(
        (1, "invoke", "read", None),
        (0, "invoke", "add", 3),
        (1, "ok", "read", 3),
        (0, "ok", "add", 3),
    )
    assert counter().check(noop_test(), hist, {}).valid is True


def test_non_numeric_values_reported_not_raised() -> None:
    hist = h((0, "invoke", "add", "x"), (0, "ok", "add", "x"), (0, "invoke", "read", None))
    r = counter().check(noop_test(), hist, {})
    assert r.valid is True
    assert r.details["bad_value_count"] == 1
    assert repr(counter()) == "counter()"
