from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jepsy.checkers.independent import independent
from jepsy.checkers.set import set_checker, set_full
from jepsy.core import noop_test
from jepsy.edn import loads
from jepsy.history import History


def h(*ops: tuple[Any, ...]) -> History:
    """Ops as (process, type, f, value[, time])."""
    ds = []
    for i, o in enumerate(ops):
        d = {"process": o[0], "type": o[1], "f": o[2], "value": o[3], "time": i}
        if len(o) > 4:
            d["time"] = o[4]
        ds.append(d)
    return History.from_dicts(ds)


def add(p: int, v: Any, outcome: str = "ok") -> list[tuple[Any, ...]]:
    return [(p, "invoke", "add", v), (p, outcome, "add", v)]


def test_set_valid_and_counts() -> None:
    hist = h(
        *add(0, 1),
        *add(1, 2),
        *add(0, 3, "fail"),
        (1, "invoke", "add", 4),
        (1, "info", "add", 4),
        (2, "invoke", "add", 5),  # pending forever
        (0, "invoke", "read", None),
        (0, "ok", "read", [1, 2, 4]),
    )
    r = set_checker().check(noop_test(), hist, {})
    assert r.valid is True
    d = r.details
    assert d["attempt_count"] == 5
    assert d["acknowledged_count"] == 2
    assert d["ok_count"] == 2
    assert d["recovered"] == [4]
    assert d["lost"] == [] and d["unexpected"] == []
    json.dumps(r.to_json())


def test_set_lost_and_unexpected() -> None:
    hist = h(*add(0, 1), *add(0, 2), (0, "invoke", "read", None), (0, "ok", "read", [2, 99]))
    r = set_checker().check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["lost"] == [1]
    assert r.details["unexpected"] == [99]
    assert r.details["lost_count"] == 1


def test_set_uses_last_ok_read_and_unknown_without_read() -> None:
    hist = h(
        *add(0, 1),
        (0, "invoke", "read", None),
        (0, "ok", "read", []),
        (0, "invoke", "read", None),
        (0, "ok", "read", [1]),
        (0, "invoke", "read", None),
        (0, "fail", "read", None),
    )
    assert set_checker().check(noop_test(), hist, {}).valid is True
    r = set_checker().check(noop_test(), h(*add(0, 1)), {})
    assert r.valid == "unknown"
    assert "never read" in (r.error or "")


def test_set_reads_edn_sets_and_list_elements() -> None:
    edn = loads(
        "[{:process 0 :type :invoke :f :add :value [1 2]}"
        " {:process 0 :type :ok :f :add :value [1 2]}"
        " {:process 0 :type :invoke :f :read :value nil}"
        " {:process 0 :type :ok :f :read :value #{[1 2]}}]"
    )
    r = set_checker().check(noop_test(), History.from_dicts(edn), {})
    assert r.valid is True, r.details
    assert r.details["ok_count"] == 1


def test_set_non_collection_read_is_unknown() -> None:
    hist = h(*add(0, 1), (0, "invoke", "read", None), (0, "ok", "read", 7))
    assert set_checker().check(noop_test(), hist, {}).valid == "unknown"


def test_independent_set() -> None:
    hist = h(
        (0, "invoke", "add", ["a", 1]),
        (0, "ok", "add", ["a", 1]),
        (0, "invoke", "add", ["b", 1]),
        (0, "ok", "add", ["b", 1]),
        (0, "invoke", "read", ["a", None]),
        (0, "ok", "read", ["a", [1]]),
        (0, "invoke", "read", ["b", None]),
        (0, "ok", "read", ["b", []]),
    )
    c = independent(set_checker())
    assert repr(c) == "independent(set_checker())"
    r = c.check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["failures"] == ["b"]
    assert r.details["keys"]["a"]["valid"] is True
    assert r.details["keys"]["b"]["lost"] == [1]
    json.dumps(r.to_json())


def test_set_full_stable_stale_lost_never_read() -> None:
    hist = h(
        (0, "invoke", "add", 1, 0),
        (0, "ok", "add", 1, 10),
        (0, "invoke", "add", 2, 11),
        (0, "ok", "add", 2, 12),
        (1, "invoke", "read", None, 20),  # after 1 and 2 known: misses 1 (stale)
        (1, "ok", "read", [2], 21),
        (1, "invoke", "read", None, 30),  # sees 1, misses 2 (lost: never seen again)
        (1, "ok", "read", [1], 31),
        (0, "invoke", "add", 3, 40),
        (0, "ok", "add", 3, 41),  # no read after: never read
    )
    r = set_full().check(noop_test(), hist, {})
    d = r.details
    assert r.valid is False
    assert d["lost"] == [2]
    assert d["stale"] == [1]
    assert d["stale_read_count"] == 1
    assert d["never_read"] == [3]
    assert d["stable_count"] == 1
    # 1: added at 0, first seen by the read completing at 31; 2: added at 11, seen at 21
    assert d["first_seen_ms"] == {
        "p50": 10 / 1e6,
        "p95": 31 / 1e6,
        "p99": 31 / 1e6,
        "max": 31 / 1e6,
    }
    json.dumps(r.to_json())


def test_set_full_linearizable_flags_stale() -> None:
    hist = h(
        (0, "invoke", "add", 1, 0),
        (0, "ok", "add", 1, 10),
        (1, "invoke", "read", None, 20),
        (1, "ok", "read", [], 21),
        (1, "invoke", "read", None, 30),
        (1, "ok", "read", [1], 31),
    )
    assert set_full().check(noop_test(), hist, {}).valid is True
    assert set_full(linearizable=True).check(noop_test(), hist, {}).valid is False


def test_set_full_read_concurrent_with_add_is_not_a_loss() -> None:
    hist = h(
        (0, "invoke", "add", 1, 0),
        (1, "invoke", "read", None, 1),
        (1, "ok", "read", [], 2),  # began before the add completed: fine
        (0, "ok", "add", 1, 3),
        (1, "invoke", "read", None, 4),
        (1, "ok", "read", [1], 5),
    )
    r = set_full(linearizable=True).check(noop_test(), hist, {})
    assert r.valid is True, r.details


def test_set_full_unexpected_duplicated_unknown() -> None:
    hist = h(*add(0, 1), (1, "invoke", "read", None), (1, "ok", "read", [1, 1, 9]))
    r = set_full().check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["unexpected"] == [9]
    assert r.details["duplicated"] == [{"value": 1, "count": 2}]
    assert set_full().check(noop_test(), h(*add(0, 1)), {}).valid == "unknown"
    assert repr(set_full()) == "set_full(linearizable=False)"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["ok", "fail", "info", "pending"]), max_size=20),
    st.data(),
)
def test_set_classification_property(outcomes: list[str], data: Any) -> None:
    ops: list[tuple[Any, ...]] = []
    acked, maybe = set(), set()
    for i, o in enumerate(outcomes):
        ops.append((i, "invoke", "add", i))
        if o != "pending":
            ops.append((i, o, "add", i))
        if o == "ok":
            acked.add(i)
        elif o in ("info", "pending"):
            maybe.add(i)
    dropped = (
        set(data.draw(st.lists(st.sampled_from(sorted(acked)), max_size=3))) if acked else set()
    )
    recovered = (
        set(data.draw(st.lists(st.sampled_from(sorted(maybe)), max_size=5))) if maybe else set()
    )
    extra = set(data.draw(st.lists(st.integers(100, 105), max_size=2)))
    read = sorted((acked - dropped) | recovered | extra)
    ops += [(999, "invoke", "read", None), (999, "ok", "read", read)]
    r = set_checker().check(noop_test(), h(*ops), {})
    assert r.details["lost"] == sorted(dropped)
    assert r.details["unexpected"] == sorted(extra)
    assert r.details["recovered"] == sorted(recovered)
    assert r.details["ok_count"] == len(acked - dropped)
    assert r.valid is (not dropped and not extra)


def _naive_set_full(hist: History) -> dict[str, list[Any]]:
    """set_full's classification, straight from its definition (reads x elements)."""
    known: dict[Any, int] = {}
    attempts = set()
    reads = []
    for inv, comp in hist.pairs():
        if inv.f == "add":
            attempts.add(inv.value)
        if comp is None or not comp.is_ok:
            continue
        if inv.f == "add":
            known[inv.value] = min(known.get(inv.value, comp.time), comp.time)
        else:
            reads.append((inv.time, set(comp.value)))
            for v in comp.value:
                known[v] = min(known.get(v, comp.time), comp.time)
    reads.sort(key=lambda r: r[0])
    out: dict[str, list[Any]] = {"lost": [], "stale": [], "never_read": []}
    for v in sorted(attempts):
        if v not in known:  # add not acknowledged and never read: nothing to say
            continue
        after = [r for r in reads if r[0] >= known[v]]
        seen_ever = any(v in r[1] for r in reads)
        if not after:
            if not seen_ever:
                out["never_read"].append(v)
            continue
        if v not in after[-1][1]:
            out["lost"].append(v)
        elif any(v not in r[1] for r in after):
            out["stale"].append(v)
    return out


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_set_full_matches_naive_definition(data: Any) -> None:
    ops: list[dict[str, Any]] = []
    busy: dict[int, dict[str, Any]] = {}
    nxt = 0
    for t in range(data.draw(st.integers(1, 24))):
        p = data.draw(st.integers(0, 2))
        if p in busy:
            inv = busy.pop(p)
            if inv["f"] == "add":
                typ = data.draw(st.sampled_from(["ok", "ok", "fail"]))
                ops.append({**inv, "type": typ, "time": t})
            else:
                seen = data.draw(
                    st.lists(st.integers(0, max(0, nxt - 1)), max_size=nxt, unique=True)
                )
                ops.append({**inv, "type": "ok", "value": seen if nxt else [], "time": t})
        else:
            if data.draw(st.booleans()):
                busy[p] = {"process": p, "type": "invoke", "f": "add", "value": nxt}
                nxt += 1
            else:
                busy[p] = {"process": p, "type": "invoke", "f": "read", "value": None}
            ops.append({**busy[p], "time": t})
    hist = History.from_dicts(ops)
    r = set_full().check(noop_test(), hist, {})
    naive = _naive_set_full(hist)
    assert r.details["lost"] == naive["lost"]
    assert r.details["stale"] == naive["stale"]
    assert r.details["never_read"] == naive["never_read"]
