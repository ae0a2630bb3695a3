"""Package composition, routing and node selection (pure logic; fakes allowed)."""

from __future__ import annotations

import random
from collections.abc import Set
from typing import Any

import pytest

from jepsy.core import Test as Spec
from jepsy.core import noop_test
from jepsy.errors import ConfigError, SetupError
from jepsy.history import Op
from jepsy.nemeses.core import (
    ComposedNemesis,
    NodeFaultNemesis,
    Package,
    check_selectors,
    compose,
    compose_packages,
    noop_package,
    select_nodes,
)
from jepsy.nemesis import NoopNemesis

N5 = ["n1", "n2", "n3", "n4", "n5"]


class Recorder:
    """A fake nemesis that records what it was asked to do."""

    def __init__(self, name: str, fs: Set[str], log: list[str]) -> None:
        self.name = name
        self._fs = frozenset(fs)
        self.log = log

    def setup(self, test: Spec) -> Recorder:
        self.log.append(f"setup {self.name}")
        return self

    def invoke(self, test: Spec, op: Op) -> Op:
        self.log.append(f"{self.name} {op.f}")
        return op.replace(type="info", value=self.name)

    def teardown(self, test: Spec) -> None:
        self.log.append(f"teardown {self.name}")
        if self.name == "bad":
            raise RuntimeError("teardown failed")

    def fs(self) -> Set[str]:
        return self._fs


def nemesis_op(f: str, value: Any = None) -> Op:
    return Op(process="nemesis", type="invoke", f=f, value=value)


def test_composed_nemesis_routes_by_f() -> None:
    log: list[str] = []
    c = compose([Recorder("a", {"x", "y"}, log), Recorder("b", {"z"}, log)])
    assert isinstance(c, ComposedNemesis)
    t = noop_test()
    c = c.setup(t)
    assert c.fs() == {"x", "y", "z"}
    assert c.invoke(t, nemesis_op("z")).value == "b"
    assert c.invoke(t, nemesis_op("x")).value == "a"
    done = c.invoke(t, nemesis_op("nope"))
    assert done.type == "info" and "no nemesis handles f 'nope'" in done.error
    assert log == ["setup a", "setup b", "b z", "a x"]


def test_compose_rejects_overlapping_fs() -> None:
    log: list[str] = []
    with pytest.raises(ConfigError, match="handled by both"):
        compose([Recorder("a", {"x"}, log), Recorder("b", {"x"}, log)])


def test_compose_of_one_or_none() -> None:
    log: list[str] = []
    r = Recorder("a", {"x"}, log)
    assert compose([r]) is r
    assert isinstance(compose([NoopNemesis()]), NoopNemesis)


def test_composed_teardown_runs_every_part_then_raises() -> None:
    log: list[str] = []
    c = compose([Recorder("bad", {"x"}, log), Recorder("ok", {"y"}, log)])
    with pytest.raises(RuntimeError, match="teardown failed"):
        c.teardown(noop_test())
    assert log == ["teardown ok", "teardown bad"]


def test_compose_packages_merges_plot_and_generators() -> None:
    log: list[str] = []
    a = Package(nemesis=Recorder("a", {"x"}, log), plot={"a": {"color": "#000"}})
    b = Package(nemesis=Recorder("b", {"y"}, log), plot={"b": {"color": "#fff"}})
    p = compose_packages([a, b, noop_package()])
    assert p.nemesis.fs() == {"x", "y"}
    assert set(p.plot) == {"a", "b"}
    assert p.generator is None and p.final_generator is None


@pytest.mark.parametrize(
    ("spec", "size"),
    [("one", 1), ("minority", 2), ("majority", 3), ("minority-third", 1), ("all", 5)],
)
def test_select_nodes_sizes(spec: str, size: int) -> None:
    for seed in range(10):
        got = select_nodes(spec, N5, random.Random(seed))
        assert len(got) == size and set(got) <= set(N5)
        assert got == sorted(got, key=N5.index)


def test_select_nodes_explicit_and_primaries() -> None:
    rng = random.Random(0)
    assert select_nodes(["n3", "n1"], N5, rng) == ["n1", "n3"]
    assert select_nodes("primaries", N5, rng, primaries=["n4"]) == ["n4"]
    with pytest.raises(ConfigError, match="not among"):
        select_nodes(["n9"], N5, rng)
    with pytest.raises(ConfigError, match="unknown node selector 'halves'"):
        select_nodes("halves", N5, rng)
    with pytest.raises(ConfigError, match="needs the DB's primaries"):
        select_nodes("primaries", N5, rng)


def test_check_selectors() -> None:
    assert check_selectors("kill", None, db=None, nodes=N5) == [
        "one",
        "minority",
        "majority",
        "all",
    ]
    assert check_selectors("kill", ["halves", "one"], db=None, nodes=N5) == ["one"]
    with pytest.raises(ConfigError, match="none of the targets"):
        check_selectors("kill", ["halves", "bridge"], db=None, nodes=N5)
    with pytest.raises(ConfigError, match="HasPrimaries"):
        check_selectors("pause", ["primaries"], db=None, nodes=N5)


class FlakyDB:
    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls: list[str] = []

    def setup(self, test: Spec, node: str) -> None: ...

    def teardown(self, test: Spec, node: str) -> None: ...

    def kill(self, test: Spec, node: str) -> None:
        if node == "n5":
            raise RuntimeError("no such process")
        self.down.add(node)

    def start(self, test: Spec, node: str) -> None:
        self.calls.append(node)
        self.down.discard(node)


def node_fault(db: FlakyDB) -> NodeFaultNemesis:
    return NodeFaultNemesis(
        name="kill",
        apply_f="kill",
        undo_f="start",
        done="killed",
        undone="started",
        apply=db.kill,
        undo=db.start,
    )


def test_node_fault_records_what_was_done_and_errors() -> None:
    db = FlakyDB()
    t = noop_test(seed=3)
    n = node_fault(db).setup(t)
    done = n.invoke(t, nemesis_op("kill", ["n1", "n5"]))
    assert done.type == "info"
    assert done.value == {"n1": "killed"}
    assert done.error == {"n5": "no such process"}
    assert db.down == {"n1"}
    done = n.invoke(t, nemesis_op("kill", "bogus"))
    assert "unknown node selector" in done.error
    done = n.invoke(t, nemesis_op("start"))
    assert done.value == {x: "started" for x in N5}
    assert not db.down and n.faulted == frozenset()


def test_node_fault_teardown_undoes_only_what_is_in_force() -> None:
    db = FlakyDB()
    t = noop_test()
    n = node_fault(db).setup(t)
    n.invoke(t, nemesis_op("kill", ["n2", "n3"]))
    n.invoke(t, nemesis_op("start", ["n3"]))
    db.calls.clear()
    n.teardown(t)
    assert db.calls == ["n2"] and not db.down
    n.teardown(t)
    assert db.calls == ["n2"]


def test_node_fault_teardown_failure_is_reported() -> None:
    t = noop_test()

    def fail(test: Spec, node: str) -> None:
        raise RuntimeError("cannot start")

    n = NodeFaultNemesis(
        name="kill",
        apply_f="kill",
        undo_f="start",
        done="killed",
        undone="started",
        apply=lambda test, node: None,
        undo=fail,
    ).setup(t)
    n.invoke(t, nemesis_op("kill", ["n1"]))
    with pytest.raises(SetupError, match="start failed on n1"):
        n.teardown(t)


def test_node_fault_selection_is_seeded() -> None:
    def picks(seed: int) -> list[Any]:
        db = FlakyDB()
        t = noop_test(seed=seed)
        n = node_fault(db).setup(t)
        return [sorted(n.invoke(t, nemesis_op("kill", "minority")).value) for _ in range(5)]

    assert picks(1) == picks(1)
    assert picks(1) != picks(2)
