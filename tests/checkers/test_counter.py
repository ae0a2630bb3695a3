from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- property: agree with a brute-force oracle on tiny concurrent histories --


def _simulate(data: Any, deltas: list[int]) -> list[dict[str, Any]]:
    """A random interleaving of 3 sequential processes doing adds and reads."""
    ops: list[dict[str, Any]] = []
    busy: dict[int, dict[str, Any]] = {}
    for _ in range(data.draw(st.integers(2, 14))):
        p = data.draw(st.integers(0, 2))
        if p in busy:
            inv = busy.pop(p)
            if inv["f"] == "add":
                typ = data.draw(st.sampled_from(["ok", "ok", "fail", "info"]))
                ops.append({**inv, "type": typ})
            else:
                ops.append({**inv, "type": "ok", "value": data.draw(st.integers(-4, 8))})
        else:
            if data.draw(st.booleans()):
                inv = {
                    "process": p,
                    "type": "invoke",
                    "f": "add",
                    "value": data.draw(st.sampled_from(deltas)),
                }
            else:
                inv = {"process": p, "type": "invoke", "f": "read", "value": None}
            busy[p] = inv
            ops.append(inv)
    # Retired processes: a process that got info never acts again; renumber to keep it simple.
    out: list[dict[str, Any]] = []
    gen: dict[int, int] = {}
    for o in ops:
        q = o["process"] + 3 * gen.get(o["process"], 0)
        out.append({**o, "process": q})
        if o["type"] == "info":
            gen[o["process"]] = gen.get(o["process"], 0) + 1
    return out


def _oracle(ops: list[dict[str, Any]]) -> bool:
    """Every ok read equals the sum of some set of adds that may have happened by then."""
    hist = History.from_dicts(ops)
    adds = []
    for inv, comp in hist.pairs():
        if inv.f == "add" and not (comp is not None and comp.is_fail):
            adds.append((inv, comp))
    for inv, comp in hist.pairs():
        if inv.f != "read" or comp is None or not comp.is_ok:
            continue
        must = [a for a, c in adds if c is not None and c.is_ok and c.index < inv.index]
        may = [a for a, c in adds if a.index < comp.index and a not in must]
        base = sum(a.value for a in must)
        sums = {base}
        for a in may:
            sums |= {s + a.value for s in sums}
        if comp.value not in sums:
            return False
    return True


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_unit_increments_match_oracle(data: Any) -> None:
    ops = _simulate(data, [1])
    assert counter().check(noop_test(), History.from_dicts(ops), {}).valid is _oracle(ops)


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_any_deltas_no_false_alarm(data: Any) -> None:
    ops = _simulate(data, [-2, 1, 3])
    if _oracle(ops):
        assert counter().check(noop_test(), History.from_dicts(ops), {}).valid is True
