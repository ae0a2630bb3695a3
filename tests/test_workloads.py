"""Workload registry, file plugins, and the register / set generators (via simulate)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from jepsy.errors import ConfigError
from jepsy.generator import limit, simulate
from jepsy.workloads.core import Workload, get_workload, workloads
from jepsy.workloads.register import IndependentRegisters
from jepsy.workloads.set import Adds


def test_builtins_registered() -> None:
    ws = workloads()
    assert {"register", "set"} <= set(ws)
    for w in ws.values():
        assert w.doc and w.ops
    with pytest.raises(ConfigError, match="register"):
        get_workload("nope")


def test_register_keys_rotate_and_stay_within_thread_groups() -> None:
    g = limit(200, IndependentRegisters(threads_per_key=2, ops_per_key=10))
    ops = simulate(g, concurrency=6, nemesis=False, seed=3)
    invokes = [op for op in ops if op.type == "invoke"]
    assert len(invokes) == 200
    per_key: dict[int, list[int]] = defaultdict(list)
    for op in invokes:
        assert op.f in ("read", "write", "cas")
        k, v = op.value
        per_key[k].append(op.process % 6)
        if op.f == "cas":
            assert isinstance(v, list) and len(v) == 2
    # A key gets at most ops_per_key ops, all from one group of 2 threads.
    for k, threads in per_key.items():
        assert len(threads) <= 10, k
        assert len({t // 2 for t in threads}) == 1, (k, threads)
    assert len(per_key) >= 200 // 10


def test_register_generator_is_deterministic() -> None:
    g = limit(50, IndependentRegisters())
    a = simulate(g, concurrency=5, seed=1)
    b = simulate(g, concurrency=5, seed=1)
    assert [(o.f, o.value) for o in a] == [(o.f, o.value) for o in b]


def test_set_adds_are_unique_and_final_read_is_one_op() -> None:
    ops = simulate(limit(30, Adds()), concurrency=3)
    adds = [op.value for op in ops if op.type == "invoke"]
    assert adds == list(range(30))
    w = get_workload("set")
    final = w.final_generator({})
    assert final is not None
    reads = [op for op in simulate(final, concurrency=3) if op.type == "invoke"]
    assert [(op.f, op.process) for op in reads] == [("read", 0)]


def test_workload_from_file(tmp_path: Path) -> None:
    p = tmp_path / "wl.py"
    p.write_text(
        "from jepsy.workloads.core import Workload\n"
        "from jepsy.checkers.core import unbridled_optimism\n"
        "def workload():\n"
        "    return Workload(name='from-file', doc='d', ops={'x': 'x'},\n"
        "        generator=lambda o: None, checker=lambda o: unbridled_optimism())\n"
    )
    w = get_workload(str(p))
    assert isinstance(w, Workload) and w.name == "from-file"
    assert "from-file" in workloads()


def test_bad_workload_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        get_workload(str(tmp_path / "missing.py"))
    p = tmp_path / "nowl.py"
    p.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="has no `workload`"):
        get_workload(str(p))
    q = tmp_path / "broken.py"
    q.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="boom"):
        get_workload(str(q))
    r = tmp_path / "wrong.py"
    r.write_text("workload = 42\n")
    with pytest.raises(ConfigError, match="expected a Workload"):
        get_workload(str(r))


def test_int_options_of_the_workloads_are_checked() -> None:
    from jepsy.errors import ConfigError
    from jepsy.workloads.core import get_workload

    for name, option in (("register", "ops_per_key"), ("list-append", "key_count")):
        gen_of = get_workload(name).generator
        gen_of({option: "7"})  # a string from -o is fine
        with pytest.raises(ConfigError, match=f"option {option} must be an int"):
            gen_of({option: "many"})
        with pytest.raises(ConfigError, match=f"option {option} must be at least 1"):
            gen_of({option: 0})
