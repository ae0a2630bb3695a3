"""Grudge strategies in jepsy.net: pure properties, no network.

The partitions applied to real nodes are tested in tests/nemeses/test_partition.py."""

from __future__ import annotations

import itertools
import random

import pytest

from jepsy import net
from jepsy.errors import ConfigError

N5 = ["n1", "n2", "n3", "n4", "n5"]


def sides(g: net.Grudge, nodes: list[str]) -> dict[str, frozenset[str]]:
    return net.components_seen(g, nodes)


def test_complete_grudge_keeps_own_side_and_is_symmetric() -> None:
    g = net.complete_grudge([["n1", "n2"], ["n3", "n4"], ["n5"]])
    assert g["n1"] == {"n3", "n4", "n5"}
    assert g["n5"] == {"n1", "n2", "n3", "n4"}
    assert net.is_symmetric(g)
    seen = sides(g, N5)
    assert seen["n1"] == seen["n2"] == {"n1", "n2"}
    assert seen["n5"] == {"n5"}


def test_complete_grudge_rejects_overlapping_components() -> None:
    with pytest.raises(ConfigError, match="disjoint"):
        net.complete_grudge([["n1", "n2"], ["n2", "n3"]])


def test_halves_in_order() -> None:
    g = net.halves(N5)
    assert g["n1"] == g["n2"] == {"n3", "n4", "n5"}
    assert g["n3"] == {"n1", "n2"}
    assert net.is_symmetric(g)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("fn", [net.random_halves, net.majority])
def test_random_halves_split_minority_from_majority(seed: int, fn: object) -> None:
    assert callable(fn)
    g = fn(N5, random.Random(seed))
    seen = sides(g, N5)
    sizes = sorted({len(s) for s in seen.values()})
    assert sizes == [2, 3]
    assert net.is_symmetric(g)
    for a, b in itertools.combinations(N5, 2):
        assert (seen[a] == seen[b]) == (not net.blocked(g, a, b))


def test_random_halves_vary_with_the_seed() -> None:
    grudges = {
        tuple(sorted(net.to_json(net.random_halves(N5, random.Random(s))).items()).__repr__())
        for s in range(30)
    }
    assert len(grudges) > 3


@pytest.mark.parametrize("seed", range(20))
def test_one_isolates_exactly_one_node(seed: int) -> None:
    g = net.one(N5, random.Random(seed))
    seen = sides(g, N5)
    loners = [n for n, s in seen.items() if s == {n}]
    assert len(loners) == 1
    (loner,) = loners
    assert g[loner] == set(N5) - {loner}
    for n in N5:
        if n != loner:
            assert g[n] == {loner}


def test_minority_third_sizes() -> None:
    assert [net.minority_third_size(n) for n in (4, 5, 6, 7, 9, 10)] == [1, 1, 1, 2, 2, 3]
    nodes = [f"n{i}" for i in range(1, 8)]
    g = net.minority_third(nodes, random.Random(3))
    seen = sides(g, nodes)
    assert sorted({len(s) for s in seen.values()}) == [2, 5]
    with pytest.raises(ConfigError, match="at least 4"):
        net.minority_third(["a", "b", "c"], random.Random(0))


@pytest.mark.parametrize("n", [4, 5, 6, 7, 9])
@pytest.mark.parametrize("seed", range(10))
def test_majorities_ring_every_node_sees_a_distinct_majority(n: int, seed: int) -> None:
    nodes = [f"n{i}" for i in range(1, n + 1)]
    g = net.majorities_ring(nodes, random.Random(seed))
    seen = sides(g, nodes)
    for node, s in seen.items():
        assert node in s
        assert len(s) > n / 2, (node, s)
        assert len(s) < n, "nobody sees everyone"
    assert len(set(seen.values())) == n, "no two nodes see the same majority"
    assert net.is_symmetric(g)


def test_majorities_ring_five_nodes_each_sees_exactly_three() -> None:
    g = net.majorities_ring(N5, random.Random(7))
    assert all(len(v) == 2 for v in g.values())


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_bridge_node_sees_both_halves(seed: int | None) -> None:
    rng = None if seed is None else random.Random(seed)
    g = net.bridge(N5, rng)
    seen = sides(g, N5)
    bridges = [n for n, s in seen.items() if s == set(N5)]
    assert len(bridges) == 1
    (b,) = bridges
    others = [n for n in N5 if n != b]
    groups = {seen[n] - {b} for n in others}
    assert len(groups) == 2
    left, right = sorted(groups, key=len)
    assert left | right == set(others) and not left & right
    assert len(left) == len(right) == 2
    assert net.is_symmetric(g)
    if seed is None:
        assert b == "n3"


def test_primaries_isolates_each_primary_alone() -> None:
    g = net.primaries(N5, ["n2", "n4"])
    seen = sides(g, N5)
    assert seen["n2"] == {"n2"}
    assert seen["n4"] == {"n4"}
    assert seen["n1"] == {"n1", "n3", "n5"}
    with pytest.raises(ConfigError, match="no primary"):
        net.primaries(N5, [])


def test_grudge_for_dispatches_and_rejects_unknown_names() -> None:
    rng = random.Random(0)
    for name in net.PARTITION_STRATEGIES:
        g = net.grudge_for(name, N5, rng, primary_nodes=["n1"])
        assert set(g) <= set(N5)
        assert any(g.values()), name
    with pytest.raises(ConfigError, match="unknown partition strategy 'split'"):
        net.grudge_for("split", N5, rng)
    with pytest.raises(ConfigError, match="HasPrimaries"):
        net.grudge_for("primaries", N5, rng)


def test_grudge_json_round_trip() -> None:
    g = net.bridge(N5)
    assert net.from_json(net.to_json(g)) == g
    with pytest.raises(ConfigError):
        net.from_json({"n1": "n2"})


def test_blocked_is_true_when_either_side_drops() -> None:
    g = {"a": frozenset({"b"})}
    assert net.blocked(g, "a", "b") and net.blocked(g, "b", "a")
    assert not net.blocked(g, "a", "c")
    assert not net.is_symmetric(g)


def test_try_on_nodes_collects_results_and_errors() -> None:
    def fn(n: str) -> int:
        if n == "n2":
            raise ValueError("boom")
        return len(n)

    res, errs = net.try_on_nodes(N5, fn)
    assert res == {"n1": 2, "n3": 2, "n4": 2, "n5": 2}
    assert list(errs) == ["n2"]
    with pytest.raises(ValueError, match="boom"):
        net.on_nodes(N5, fn)
