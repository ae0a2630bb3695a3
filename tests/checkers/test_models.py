"""The built-in models' steps, user models, and each model against the brute-force oracle."""

from __future__ import annotations

import random
from typing import Any

import pytest

from jepsy.checkers.linearizable import MODELS, Model, get_model, linearizable
from jepsy.checkers.linearizable.models import as_model, freeze
from jepsy.errors import ModelError
from jepsy.history import History
from tests.checkers.oracle import brute_force, random_ops_history


def test_register_steps() -> None:
    m = get_model("cas-register")
    assert m.init() is None
    assert m.step(None, "read", None) == (True, None)
    assert m.step(None, "write", 3) == (True, 3)
    assert m.step(3, "read", 4) == (False, 3)
    assert m.step(3, "cas", (3, 5)) == (True, 5)
    assert m.step(3, "cas", (4, 5))[0] is False
    assert m.pending("read", None) is None
    with pytest.raises(ModelError, match="no operation 'cas'"):
        get_model("register").step(None, "cas", (1, 2))
    assert get_model("register", init=0).init() == 0


def test_multi_register_steps() -> None:
    m = get_model("multi-register", init={"x": 0, "y": 0})
    s = m.init()
    ok, s2 = m.step(s, "txn", freeze([["read", "x", 0], ["write", "y", 2]]))
    assert ok
    assert m.step(s2, "txn", freeze([["read", "y", 2], ["read", "x", None]]))[0]
    assert not m.step(s2, "txn", freeze([["read", "y", 0]]))[0]
    assert m.describe_state(s2) == "{x 0, y 2}"


def test_mutex_set_and_queue_steps() -> None:
    mu = get_model("mutex")
    assert mu.step(False, "acquire", None) == (True, True)
    assert mu.step(True, "acquire", None)[0] is False
    assert mu.step(True, "release", None) == (True, False)
    st = get_model("set")
    ok, s = st.step(frozenset(), "add", 1)
    assert ok and st.step(s, "read", (1,))[0] and not st.step(s, "read", ())[0]
    fifo = get_model("fifo-queue")
    _, q = fifo.step((), "enqueue", 1)
    _, q = fifo.step(q, "enqueue", 2)
    assert fifo.step(q, "dequeue", 2)[0] is False
    assert fifo.step(q, "dequeue", 1) == (True, (2,))
    assert fifo.step((), "dequeue", None) == (True, ())
    bag = get_model("unordered-queue")
    _, b = bag.step((), "enqueue", 1)
    _, b = bag.step(b, "enqueue", 2)
    assert bag.step(b, "dequeue", 2)[0] and not bag.step(b, "dequeue", 3)[0]


def test_kv_steps_and_partition() -> None:
    kv = get_model("kv")
    ok, s = kv.step(kv.init(), "put", ("a", 1))
    assert ok and kv.step(s, "get", ("a", 1))[0] and kv.step(s, "get", ("b", None))[0]
    ok, s = kv.step(s, "append", ("a", (2,)))
    assert ok and kv.step(s, "get", ("a", (1, 2)))[0] is False  # 1 is not a sequence
    assert kv.partition([("put", ("a", 1)), ("get", ("b", 2)), ("get", ("a", 1))]) == [[0, 2], [1]]


def test_kv_history_is_split_by_key() -> None:
    h = History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "put", "value": ["a", 1]},
            {"process": 0, "type": "ok", "f": "put", "value": ["a", 1]},
            {"process": 1, "type": "invoke", "f": "append", "value": ["b", "x"]},
            {"process": 1, "type": "ok", "f": "append", "value": ["b", "x"]},
            {"process": 1, "type": "invoke", "f": "get", "value": ["b", None]},
            {"process": 1, "type": "ok", "f": "get", "value": ["b", "x"]},
            {"process": 0, "type": "invoke", "f": "get", "value": ["a", None]},
            {"process": 0, "type": "ok", "f": "get", "value": ["a", 2]},
        ]
    )
    r = linearizable("kv").check(None, h, {})  # type: ignore[arg-type]
    assert r.valid is False
    assert r.details["failures"] == ["a"]
    assert r.details["keys"]["b"]["valid"] is True


def test_user_models_duck_typed_and_subclassed() -> None:
    class Counter:
        name = "counter"

        def init(self) -> int:
            return 0

        def step(self, state: int, f: str, value: Any) -> tuple[bool, int]:
            if f == "add":
                return True, state + value
            return state == value, state

    class Counter2(Model):
        name = "counter2"

        def init(self) -> int:
            return 0

        def step(self, state: Any, f: str, value: Any) -> tuple[bool, Any]:
            return Counter().step(state, f, value)

    h = History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "add", "value": 2},
            {"process": 1, "type": "invoke", "f": "read", "value": None},
            {"process": 0, "type": "ok", "f": "add", "value": 2},
            {"process": 1, "type": "ok", "f": "read", "value": 2},
            {"process": 1, "type": "invoke", "f": "read", "value": None},
            {"process": 1, "type": "ok", "f": "read", "value": 0},
        ]
    )
    for model in (Counter(), Counter2()):
        m = as_model(model)
        assert m.describe_op("add", 2) == "add 2"
        r = linearizable(model).check(None, h, {})  # type: ignore[arg-type]
        assert r.valid is False
        assert r.details["model"].startswith("counter")
    with pytest.raises(ModelError, match="not a model"):
        as_model(42)


def _maker(name: str) -> Any:
    vals = [0, 1, 2]

    def make(rng: random.Random) -> tuple[str, Any, Any]:
        r = rng.random()
        v = rng.choice(vals)
        if name == "mutex":
            f = "acquire" if r < 0.5 else "release"
            return f, None, None
        if name == "set":
            if r < 0.6:
                return "add", v, v
            return "read", None, sorted(rng.sample(vals, rng.randrange(4)))
        if name in ("fifo-queue", "unordered-queue"):
            if r < 0.5:
                return "enqueue", v, v
            return "dequeue", None, rng.choice([None, *vals])
        if name == "multi-register":
            k = rng.choice("xy")
            if r < 0.5:
                return "txn", [["write", k, v]], [["write", k, v]]
            return "txn", [["read", k, None]], [["read", k, rng.choice([None, *vals])]]
        if name == "kv":
            k = rng.choice("ab")
            if r < 0.4:
                return "put", [k, v], [k, v]
            if r < 0.6:
                return "append", [k, [v]], [k, [v]]
            got = rng.choice([None, (v,), (v, 1), v])
            return "get", [k, None], [k, got]
        f = "read" if r < 0.5 else "write"
        return f, (None if f == "read" else v), (rng.choice([None, *vals]) if f == "read" else v)

    return make


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_model_agrees_with_brute_force(name: str) -> None:
    rng = random.Random(name)
    model = get_model(name)
    seen = {True: 0, False: 0}
    for i in range(400):
        h = random_ops_history(
            rng, _maker(name), n_ops=rng.randint(1, 7), processes=rng.randint(1, 4)
        )
        expected = brute_force(h, model)
        seen[expected] += 1
        got = linearizable(model).check(None, h, {}).valid  # type: ignore[arg-type]
        assert got == expected, (name, i, h.to_dicts())
    assert seen[True] > 20 and seen[False] > 20, seen
