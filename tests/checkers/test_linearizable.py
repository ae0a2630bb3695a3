"""The linearizability checker on hand-made histories and against a brute-force oracle."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from bench.gen import register_history
from jepsy.checkers import Result
from jepsy.checkers.linearizable import MODELS, Model, get_model, linearizable
from jepsy.checkers.linearizable.models import as_model
from jepsy.checkers.linearizable.problem import build, collect
from jepsy.checkers.linearizable.search import solve
from jepsy.errors import ConfigError, ModelError
from jepsy.history import History
from tests.checkers.oracle import brute_force, random_history


def H(*events: tuple[Any, ...]) -> History:
    """Events as (process, type, f, value)."""
    return History.from_dicts(
        [{"process": p, "type": t, "f": f, "value": v} for p, t, f, v in events]
    )


def check(h: History, model: str | Model = "cas-register", **kw: Any) -> Result:
    r = linearizable(model, **kw).check(None, h, {})  # type: ignore[arg-type]
    json.dumps(r.to_json())  # always JSON-serialisable
    return r


def test_empty_and_nemesis_only_histories_are_valid() -> None:
    assert check(H()).valid is True
    assert check(H(("nemesis", "info", "start", None), ("nemesis", "info", "stop", None))).valid


def test_sequential_register() -> None:
    h = H(
        (0, "invoke", "write", 1),
        (0, "ok", "write", 1),
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
        (1, "invoke", "cas", [1, 2]),
        (1, "ok", "cas", [1, 2]),
        (0, "invoke", "read", None),
        (0, "ok", "read", 2),
    )
    r = check(h)
    assert r.valid is True
    assert r.details["model"] == "cas-register"
    assert r.details["op_count"] == 4


def test_stale_read_is_invalid_and_explained() -> None:
    h = H(
        (0, "invoke", "write", 1),
        (0, "ok", "write", 1),
        (0, "invoke", "write", 2),
        (0, "ok", "write", 2),
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
    )
    r = check(h)
    assert r.valid is False
    assert r.details["op"]["f"] == "read" and r.details["op"]["value"] == 1
    assert r.details["previous_ok"]["f"] == "write" and r.details["previous_ok"]["value"] == 2


def test_search_explanation_has_configs_and_paths() -> None:
    # Two concurrent writes, then reads that see 1, 2, 1: no order explains it.
    h = H(
        (0, "invoke", "write", 1),
        (1, "invoke", "write", 2),
        (0, "ok", "write", 1),
        (1, "ok", "write", 2),
        (2, "invoke", "read", None),
        (2, "ok", "read", 1),
        (2, "invoke", "read", None),
        (2, "ok", "read", 2),
        (2, "invoke", "read", None),
        (2, "ok", "read", 1),
    )
    r = check(h)
    assert r.valid is False
    d = r.details
    assert d["op"]["value"] in (1, 2)
    assert 1 <= len(d["configs"]) <= 10
    assert all(isinstance(c["state"], str) for c in d["configs"])
    assert 1 <= len(d["final_paths"]) <= 10
    assert all(len(p["ops"]) <= 32 for p in d["final_paths"])


def test_nil_read_means_unset() -> None:
    # A read of nil before any write is fine; after a completed write it is stale.
    ok = H((0, "invoke", "read", None), (0, "ok", "read", None))
    assert check(ok).valid is True
    stale = H(
        (0, "invoke", "write", 3),
        (0, "ok", "write", 3),
        (1, "invoke", "read", None),
        (1, "ok", "read", None),
    )
    assert check(stale).valid is False


def test_info_ops_may_take_effect_late_or_never() -> None:
    late = H(
        (0, "invoke", "write", 1),
        (0, "info", "write", 1),
        (1, "invoke", "read", None),
        (1, "ok", "read", None),
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
    )
    assert check(late).valid is True
    never = H((0, "invoke", "write", 1), (0, "info", "write", 1))
    assert check(never).valid is True
    # An info write cannot take effect before its invocation.
    before = H(
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
        (0, "invoke", "write", 1),
        (0, "info", "write", 1),
    )
    assert check(before).valid is False


def test_failed_ops_are_dropped() -> None:
    h = H(
        (0, "invoke", "write", 1),
        (0, "fail", "write", 1),
        (1, "invoke", "read", None),
        (1, "ok", "read", 1),
    )
    assert check(h).valid is False


def test_independent_keys_are_checked_separately() -> None:
    h = H(
        (0, "invoke", "write", ["a", 1]),
        (0, "ok", "write", ["a", 1]),
        (1, "invoke", "write", ["b", 2]),
        (1, "ok", "write", ["b", 2]),
        (2, "invoke", "read", ["a", None]),
        (2, "ok", "read", ["a", 1]),
        (2, "invoke", "read", ["b", None]),
        (2, "ok", "read", ["b", 1]),
    )
    r = check(h, independent=True)
    assert r.valid is False
    assert r.details["failures"] == ["b"]
    assert set(r.details["keys"]) == {"a", "b"}
    assert r.details["keys"]["a"]["valid"] is True
    assert r.details["op"]["value"] == ["b", 1]
    # Without the split it is a single register and also invalid (a read of 1 after 2).
    assert check(h).valid is False


def _hard_history() -> History:
    """600 ops, 20% info, one late stale read: not linearizable, and without the
    register reductions a search must try very many orders of the info ops."""
    return History.from_dicts(
        register_history(seed=3, ops_per_key=600, processes=10, p_info=0.2, stale=True)
    )


def test_time_limit_gives_unknown_not_a_hang() -> None:
    h = _hard_history()
    t0 = time.perf_counter()
    r = check(h, _generic("cas-register"), time_limit=0.2)
    assert time.perf_counter() - t0 < 5
    assert r.valid == "unknown"
    assert r.error == "timeout after 0.2 s"
    # opts["time_limit"] overrides the checker's own.
    r = linearizable(_generic("cas-register"), time_limit=100).check(
        None,  # type: ignore[arg-type]
        h,
        {"time_limit": 0.1},
    )
    assert r.valid == "unknown" and r.error == "timeout after 0.1 s"
    # The register reductions and pre-check decide it at once.
    t0 = time.perf_counter()
    assert check(h, time_limit=5).valid is False
    assert time.perf_counter() - t0 < 2


def test_memory_limit_gives_unknown() -> None:
    r = check(_hard_history(), _generic("cas-register"), memory_limit_mb=1, time_limit=60)
    assert r.valid == "unknown"
    assert r.error == "memory limit of 1 MB reached"


def test_explanation_stays_small_on_a_big_history() -> None:
    h = History.from_dicts(
        register_history(seed=2, ops_per_key=5000, processes=10, p_info=0.02, stale=True)
    )
    t0 = time.perf_counter()
    r = check(h)
    assert time.perf_counter() - t0 < 5
    assert r.valid is False
    # The pre-check (run once the short search has failed) names the stale read.
    assert r.details["reason"].startswith("every write of the value it observes was overwritten")
    assert r.details["op"]["f"] == "read" and r.details["op"]["type"] == "ok"
    size = len(json.dumps(r.to_json()))
    assert size < 200_000, size
    assert len(r.details["configs"]) <= 10 and len(r.details["final_paths"]) <= 10
    assert all(len(p["ops"]) <= 32 for p in r.details["final_paths"])


def test_found_linearizations_are_legal_orders() -> None:
    """When the search says valid, the order it found really is a linearization."""
    rng = random.Random(7)
    model = get_model("cas-register")
    checked = 0
    for _ in range(300):
        h = random_history(rng, n_ops=rng.randint(1, 10), processes=4, simulate=True)
        for name, m in (("fast", model), ("generic", as_model(_generic("cas-register")))):
            built = build(collect(h)[None], m)
            out = solve(built.problem, deadline=time.perf_counter() + 10)
            assert out.valid is True, (name, h.to_dicts())
            assert out.linearization is not None
            order = [built.ids[i] for i in out.linearization]
            # every completed op exactly once, each op at most once
            assert len(set(map(id, order))) == len(order)
            must = {id(e) for e in built.ids if not e.pending}
            assert must <= set(map(id, order))
            state = m.init()
            placed: set[int] = set()
            for e in order:
                # real time: nothing placed later may have completed before e was invoked
                assert all(not (x.ret < e.call) or id(x) in placed for x in built.ids), name
                ok, state = m.step(state, e.f, e.value)
                assert ok, (name, h.to_dicts())
                placed.add(id(e))
            checked += 1
    assert checked == 600


def test_bad_options_and_unknown_model() -> None:
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        linearizable("nope")
    with pytest.raises(ConfigError, match="time_limit"):
        linearizable(time_limit=0)
    assert sorted(MODELS) == [
        "cas-register",
        "fifo-queue",
        "kv",
        "multi-register",
        "mutex",
        "register",
        "set",
        "unordered-queue",
    ]


def test_op_the_model_does_not_know_gives_unknown() -> None:
    r = check(H((0, "invoke", "frob", 1), (0, "ok", "frob", 1)))
    assert r.valid == "unknown"
    assert r.error is not None and "frob" in r.error


def _generic(name: str) -> Any:
    """The built-in model hidden behind duck typing: forces the generic search."""
    m = get_model(name)

    class Generic:
        def init(self) -> Any:
            return m.init()

        def step(self, s: Any, f: str, v: Any) -> tuple[bool, Any]:
            return m.step(s, f, v)

        def pending(self, f: str, v: Any) -> Any:
            return m.pending(f, v)

    return Generic()


def test_agrees_with_brute_force_on_thousands_of_small_histories() -> None:
    rng = random.Random(20261122)
    model = get_model("cas-register")
    seen = {True: 0, False: 0}
    for i in range(3000):
        h = random_history(
            rng,
            n_ops=rng.randint(1, 8),
            processes=rng.randint(1, 4),
            values=rng.randint(1, 4),
            simulate=rng.random() < 0.5,
        )
        expected = brute_force(h, model)
        seen[expected] += 1
        fast = check(h).valid
        assert fast == expected, (i, h.to_dicts())
        if i % 3 == 0:
            assert check(h, _generic("cas-register")).valid == expected, (i, h.to_dicts())
    assert seen[True] > 500 and seen[False] > 500


@pytest.mark.integration
def test_knossos_histories_get_their_stated_verdicts() -> None:
    from jepsy.history import read_history
    from tests.conftest import need_shared_histories

    root = need_shared_histories() / "knossos"
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert len(manifest["files"]) == 122
    wrong = []
    for f in manifest["files"]:
        h = read_history(root / f["file"])
        # Registers start unset (nil), which reproduces Knossos (see the README);
        # the multi-register file states its initial mapping.
        init = {"x": 0, "y": 0} if f["model"] == "multi-register" else None
        r = check(h, get_model(f["model"], init=init))
        if r.valid != f["expected_valid"]:
            wrong.append((f["file"], r.valid, r.error))
    assert wrong == []


def test_both_search_orders_agree_with_brute_force() -> None:
    from jepsy.checkers.linearizable.search import Outcome, _run

    rng = random.Random(99)
    model = get_model("cas-register")
    for i in range(1500):
        h = random_history(
            rng,
            n_ops=rng.randint(1, 8),
            processes=rng.randint(1, 4),
            values=rng.randint(1, 3),
            simulate=rng.random() < 0.5,
            p_info=0.4,
        )
        expected = brute_force(h, model)
        for m in (model, as_model(_generic("cas-register"))):
            built = build(collect(h)[None], m, reduce=False)
            for eager in (False, True):
                got = _run(
                    built.problem,
                    eager=eager,
                    deadline=time.perf_counter() + 10,
                    max_configs=10**6,
                    out=Outcome(valid=None),
                )
                assert got == expected, (i, eager, m.name, h.to_dicts())


def test_many_failing_keys_keep_the_result_small() -> None:
    events: list[tuple[Any, ...]] = []
    for k in range(15):
        events += [
            (0, "invoke", "write", [k, 1]),
            (0, "ok", "write", [k, 1]),
            (0, "invoke", "write", [k, 2]),
            (0, "ok", "write", [k, 2]),
            (1, "invoke", "read", [k, None]),
            (1, "ok", "read", [k, 1]),
        ]
    r = check(H(*events), independent=True)
    assert r.valid is False
    assert len(r.details["failures"]) == 15
    explained = [k for k, d in r.details["keys"].items() if "configs" in d]
    assert len(explained) == 10
    assert all("op" in d for d in r.details["keys"].values())


def test_malformed_kv_values_give_unknown_not_a_crash() -> None:
    r = check(H((0, "invoke", "put", 3), (0, "ok", "put", 3)), "kv")
    assert r.valid == "unknown"
    assert r.error is not None and "[key value]" in r.error


def test_worker_processes_give_the_same_result_as_one_process() -> None:
    events = register_history(seed=9, keys=6, ops_per_key=60, processes=3, p_info=0.1)
    good = History.from_dicts(events)
    bad = History.from_dicts(
        register_history(seed=9, keys=6, ops_per_key=60, processes=3, p_info=0.1, stale=True)
    )
    for h in (good, bad):
        serial = check(h, independent=True, processes=1)
        forked = check(h, independent=True, processes=2)
        assert serial.valid == forked.valid
        assert serial.details["failures"] == forked.details["failures"]
        assert (
            set(serial.details["keys"]) == set(forked.details["keys"])
            and len(forked.details["keys"]) == 6
        )
    assert check(good, independent=True, processes=2).valid is True
    assert check(bad, independent=True, processes=2).valid is False


def test_an_error_in_a_worker_process_reaches_the_caller() -> None:
    """A user model that raises in a forked worker fails the check as it would
    in one process, and leaves no worker behind."""
    import os

    class Exploding(Model):
        name = "exploding"

        def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
            if os.getpid() != parent:
                raise ValueError("boom in a worker")
            time.sleep(0.002)  # slow here, so the worker surely gets a chunk
            return True, state

    parent = os.getpid()
    h = History.from_dicts(
        register_history(seed=9, keys=8, ops_per_key=20, processes=3, p_info=0.0)
    )
    with pytest.raises(ValueError, match="boom in a worker"):
        linearizable(Exploding(), independent=True, processes=2).check(None, h, {})
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left to reap


def test_reductions_agree_with_the_plain_search_on_medium_histories() -> None:
    """10-22 ops: too many for the oracle; the plain search (no reductions, no
    pre-check, generic steps) is the reference for the register fast path."""
    rng = random.Random(4242)
    disagreements = []
    seen: dict[str, int] = {}
    for i in range(400):
        h = random_history(
            rng,
            n_ops=rng.randint(10, 22),
            processes=rng.randint(2, 6),
            values=rng.randint(2, 5),
            simulate=rng.random() < 0.6,
            p_info=rng.choice([0.1, 0.3, 0.5]),
        )
        fast = check(h, time_limit=20).valid
        plain = check(h, _generic("cas-register"), time_limit=20).valid
        seen[str(plain)] = seen.get(str(plain), 0) + 1
        if "unknown" not in (fast, plain) and fast != plain:
            disagreements.append((i, fast, plain, h.to_dicts()))
    assert disagreements == []
    assert seen.get("True", 0) > 100 and seen.get("False", 0) > 100, seen


@pytest.mark.parametrize(
    ("values", "stale", "expected"),
    [(None, True, False), (20, False, True), (5, False, True)],
)
def test_many_info_ops_are_decided(values: int | None, stale: bool, expected: bool) -> None:
    """5,000 ops, 10 processes, 20% info: a late stale read (unique values) is
    found without search; with few distinct values the search still decides."""
    h = History.from_dicts(
        register_history(
            seed=5, ops_per_key=5000, processes=10, p_info=0.2, values=values, stale=stale
        )
    )
    r = check(h, time_limit=60)
    assert r.valid is expected


def test_available_memory_matches_psutil() -> None:
    """The memo cap's default reads MemAvailable itself (importing psutil is slow)."""
    import psutil

    from jepsy.checkers.linearizable import DEFAULT_MEMORY_MB, _available_mb, _default_memory_mb

    got = _available_mb()
    assert got is not None
    want = psutil.virtual_memory().available // (1024 * 1024)
    assert abs(got - want) <= max(64, want // 10), (got, want)
    assert 64 <= _default_memory_mb() <= DEFAULT_MEMORY_MB


def test_pairing_by_key_is_pairing_then_splitting() -> None:
    """pair_by_key's one pass gives pair()'s slots grouped by key, in order:
    fail ops left out, info ops pending, nemesis ops ignored."""
    from jepsy.checkers.linearizable.problem import pair, pair_by_key

    events = register_history(keys=6, ops_per_key=300, processes=4, p_info=0.1, seed=8)
    events.insert(50, {"process": "nemesis", "type": "info", "f": "start", "value": None})
    h = History.from_dicts(events)
    values = h.columns().value
    types = h.columns().type
    slots = pair(h)
    assert any(c < 0 for _, c in slots)  # info ops are in, pending
    assert all(c < 0 or types[c] == "ok" for _, c in slots)
    expected: dict[Any, list[tuple[int, int]]] = {}
    for s in slots:
        expected.setdefault(values[s[0]][0], []).append(s)
    got = pair_by_key(h, independent=True)
    assert got == expected and list(got) == list(expected)
