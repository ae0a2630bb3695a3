"""A whole run with every fault: the runner drives the combined package and
every nemesis action and its outcome lands in the history (local namespaces)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from jepsy import generator as gen
from jepsy.core import noop_test
from jepsy.history import read_jsonl
from jepsy.nemeses import combined
from jepsy.runner import run
from tests.nemeses.nemesis_daemon import RedisNodesDB
from tests.remotes import need_backend

pytestmark = pytest.mark.integration

HEALS = ["stop-partition", "start", "resume", "clock-reset", "stop-packet-loss"]


def test_run_records_every_nemesis_action_and_heals(tmp_path: Path) -> None:
    need_backend("local")
    from jepsy.control.local import LocalRemote, leftovers

    remote = LocalRemote(cluster="jnr", subnet="10.92.4.0/24")
    db = RedisNodesDB(remote, clock=True)
    pkg = combined.package(
        ["partition", "kill", "pause", "clock", "packet-loss"],
        interval=0.3,
        targets=["one", "majority", "bridge"],
        db=db,
        nodes=remote.nodes(),
    )
    assert pkg.generator is not None and pkg.final_generator is not None
    test = noop_test(
        name="jn-nemesis-run",
        nodes=tuple(remote.nodes()),
        remote=remote,
        db=db,
        nemesis=pkg.nemesis,
        generator=gen.nemesis(pkg.generator),
        final_generator=pkg.final_generator,
        time_limit=8,
        seed=5,
        store_dir=tmp_path,
        plot=pkg.plot,
        spec={"nemesis": ["partition", "kill", "pause", "clock", "packet-loss"]},
    )
    result = run(test, handle_signals=False)
    assert result.error is None, result.error
    h = read_jsonl(result.run_dir.path / "history.jsonl")
    nem = [op for op in h if op.process == "nemesis"]
    invokes = [op for op in nem if op.is_invoke]
    assert len(invokes) >= 6
    for inv in invokes:
        done = h.completion(inv)
        assert done is not None and done.type == "info", inv
        assert done.value is not None, done
        assert done.error is None, done
    faults = Counter(op.f for op in invokes)
    assert len(set(faults) - set(HEALS)) >= 3, faults
    # The final generator healed every fault, in order, after the main phase.
    assert [op.f for op in invokes[-5:]] == HEALS
    # Nothing is left: namespaces gone, every daemon dead.
    assert leftovers("jnr") == {"namespaces": [], "links": [], "forward_rules": []}
    for node, pid in db.all_pids:
        assert not Path(f"/proc/{pid}").exists() or not pid_alive_host(pid), (node, pid)


def pid_alive_host(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
