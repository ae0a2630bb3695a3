"""The runner with real threads: recording, retirement, timeouts, time limits, cleanup."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from jepsy import generator as gen
from jepsy.client import NoopClient
from jepsy.control import NoopRemote
from jepsy.core import Test, noop_test
from jepsy.errors import ClientError, SetupError
from jepsy.history import History, Op
from jepsy.runner import build_test, parse_concurrency, run


def _run(test: Test) -> Any:
    return run(test, handle_signals=False)


def _writes() -> Any:
    return gen.clients(gen.repeat({"f": "write", "value": 1}))


def test_memory_register_run_leaves_a_complete_store(tmp_path: Path) -> None:
    t = build_test(
        {"db": "memory", "workload": "register", "time_limit": 1, "rate": 400, "store": tmp_path}
    )
    r = _run(t)
    assert r.valid is True and r.exit_code == 0 and r.error is None
    d = r.run_dir
    for name in ("test.json", "history.jsonl", "results.json", "jepsy.log", "report.html"):
        assert (d.path / name).is_file(), name
    h = d.history()
    assert len(h) == r.ops > 100
    assert all(c is not None for _, c in h.pairs())  # every op completed
    assert d.test()["spec"]["workload"] == "register"
    assert d.results()["valid"] is True  # type: ignore[index]
    assert (tmp_path / "latest").resolve() == d.path


@pytest.mark.parametrize(
    ("workload", "bug"),
    [
        ("register", "stale-reads"),
        ("register", "lost-writes"),
        ("register", "non-atomic-cas"),
        ("set", "lost-writes"),
        ("counter", "lost-writes"),
        ("queue", "lost-writes"),
        ("list-append", "stale-reads"),
    ],
)
def test_planted_bugs_are_caught(tmp_path: Path, workload: str, bug: str) -> None:
    t = build_test(
        {
            "db": "memory",
            "workload": workload,
            "time_limit": 1,
            "seed": 7,
            "store": tmp_path,
            "memory_bug": [bug],
        }
    )
    r = _run(t)
    assert r.valid is False and r.exit_code == 1, r.results


class FlakyClient:
    """Raises (indefinite) on every 3rd op it sees, or a definite ClientError when told."""

    def __init__(self, definite: bool = False) -> None:
        self.definite = definite
        self.n = 0

    def open(self, test: Test, node: str) -> FlakyClient:
        return FlakyClient(self.definite)

    def setup(self, test: Test) -> None:
        pass

    def invoke(self, test: Test, op: Op) -> Op:
        self.n += 1
        if self.n % 3 == 0:
            if self.definite:
                raise ClientError("refused before sending")
            raise ConnectionResetError("connection lost after sending")
        return op.replace(type="ok")

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        pass


def test_indefinite_errors_retire_the_process(tmp_path: Path) -> None:
    t = noop_test(
        client=FlakyClient(),
        generator=gen.limit(60, _writes()),
        concurrency=3,
        store_dir=tmp_path,
        time_limit=10,
    )
    r = _run(t)
    h = r.run_dir.history()  # History validates: each process is sequential
    infos = [op for op in h if op.type == "info"]
    assert infos and all("ConnectionResetError" in op.error for op in infos)
    by_proc: dict[int, list[Op]] = {}
    for op in h:
        assert isinstance(op.process, int)
        by_proc.setdefault(op.process, []).append(op)
    for p, ops in by_proc.items():
        # info only as a process's last op
        assert all(op.type != "info" for op in ops[:-1]), p
    for thread in range(3):
        procs = sorted(p for p in by_proc if p % 3 == thread)
        # the thread went on as p + concurrency, p + 2 * concurrency ...
        assert procs == list(range(thread, thread + 3 * len(procs), 3)), procs
        for p in procs[:-1]:
            assert by_proc[p][-1].type == "info", p
    assert max(by_proc) >= 3


def test_definite_errors_are_fail_and_keep_the_process(tmp_path: Path) -> None:
    t = noop_test(
        client=FlakyClient(definite=True),
        generator=gen.limit(30, _writes()),
        concurrency=2,
        store_dir=tmp_path,
    )
    h = _run(t).run_dir.history()
    assert {op.type for op in h} == {"invoke", "ok", "fail"}
    # No process is retired (a fast thread 0 may do all 30 ops before thread 1 starts).
    assert {op.process for op in h} <= {0, 1}


class HangOnce:
    """The first op of the whole run hangs for ``hang`` seconds; the rest are instant."""

    def __init__(self, hang: float, started: threading.Event | None = None) -> None:
        self.hang = hang
        self.started = started or threading.Event()

    def open(self, test: Test, node: str) -> HangOnce:
        return HangOnce(self.hang, self.started)

    def setup(self, test: Test) -> None:
        pass

    def invoke(self, test: Test, op: Op) -> Op:
        if not self.started.is_set():
            self.started.set()
            time.sleep(self.hang)
        return op.replace(type="ok")

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        pass


def test_hung_call_times_out_to_info_and_the_thread_goes_on(tmp_path: Path) -> None:
    t = noop_test(
        client=HangOnce(30.0),
        generator=gen.stagger(0.01, _writes()),
        concurrency=2,
        op_timeout=0.3,
        time_limit=1.5,
        store_dir=tmp_path,
    )
    t0 = time.monotonic()
    r = _run(t)
    assert time.monotonic() - t0 < 10  # the 30 s call was abandoned
    h = r.run_dir.history()
    timed_out = [op for op in h if op.type == "info"]
    assert len(timed_out) == 1 and "timed out" in timed_out[0].error
    p = timed_out[0].process
    assert isinstance(p, int)
    assert any(op.process == p + 2 and op.type == "ok" for op in h)  # new process, new client
    inv = h.invocation(timed_out[0])
    assert inv is not None
    assert 0.25e9 <= timed_out[0].time - inv.time <= 1.5e9


def test_time_limit_ends_the_main_phase(tmp_path: Path) -> None:
    t = noop_test(generator=gen.stagger(0.002, _writes()), time_limit=1, store_dir=tmp_path)
    t0 = time.monotonic()
    r = _run(t)
    took = time.monotonic() - t0
    assert 1.0 <= took < 5
    h = r.run_dir.history()
    assert max(op.time for op in h) < 1.3e9
    assert len(h) > 50


def test_exhausted_generator_ends_the_run(tmp_path: Path) -> None:
    t = noop_test(generator=gen.limit(20, _writes()), time_limit=60, store_dir=tmp_path)
    t0 = time.monotonic()
    r = _run(t)
    assert time.monotonic() - t0 < 10
    assert len([op for op in r.run_dir.history() if op.type == "invoke"]) == 20


def test_rate_limits_client_ops(tmp_path: Path) -> None:
    t = noop_test(generator=_writes(), time_limit=1, rate=100, store_dir=tmp_path)
    h = _run(t).run_dir.history()
    invokes = len([op for op in h if op.type == "invoke"])
    assert 40 <= invokes <= 200, invokes


class RecordingNemesis:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.torn_down = False

    def setup(self, test: Test) -> RecordingNemesis:
        return self

    def invoke(self, test: Test, op: Op) -> Op:
        self.seen.append(op.f)
        if op.f == "explode":
            raise RuntimeError("nemesis failed")
        return op.replace(type="info", value="done")

    def teardown(self, test: Test) -> None:
        self.torn_down = True

    def fs(self) -> frozenset[str]:
        return frozenset({"start", "stop", "explode"})


def test_nemesis_ops_are_recorded_and_final_generator_heals(tmp_path: Path) -> None:
    nem = RecordingNemesis()
    t = noop_test(
        nemesis=nem,
        generator=gen.any_(
            gen.clients(gen.stagger(0.01, gen.repeat({"f": "read"}))),
            gen.nemesis(gen.cycle([gen.sleep(0.1), {"f": "start"}, {"f": "explode"}])),
        ),
        final_generator=gen.nemesis({"f": "stop"}),
        time_limit=1,
        store_dir=tmp_path,
    )
    r = _run(t)
    h = r.run_dir.history()
    nops = [op for op in h if op.process == "nemesis"]
    assert {op.f for op in nops} == {"start", "explode", "stop"}
    assert nops[-1].f == "stop" and nops[-1].type == "info"  # final generator ran last
    boom = [op for op in nops if op.f == "explode" and op.type == "info"]
    assert boom and "nemesis failed" in boom[0].error
    assert nem.torn_down and r.exit_code == 0


class LifecycleDB:
    def __init__(self, fail_on: str | None = None, exc: type[Exception] = SetupError) -> None:
        self.fail_on = fail_on
        self.exc = exc
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def setup(self, test: Test, node: str) -> None:
        with self.lock:
            self.calls.append(("setup", node))
        if node == self.fail_on:
            raise self.exc(f"cannot start db on {node}")

    def teardown(self, test: Test, node: str) -> None:
        with self.lock:
            self.calls.append(("teardown", node))

    def log_files(self, test: Test, node: str) -> Sequence[str]:
        return [str(Path(test.spec["logs"]) / f"{node}.log")]


class CopyRemote(NoopRemote):
    """Nodes are names; ``download`` copies a local file (enough to test log collection)."""

    def download(self, node: str, remote: str, local: Any) -> None:
        Path(local).write_bytes(Path(remote).read_bytes())


def _lifecycle_test(tmp_path: Path, db: LifecycleDB, **kw: Any) -> Test:
    logs = tmp_path / "remote-logs"
    logs.mkdir(exist_ok=True)
    for n in ("n1", "n2", "n3"):
        (logs / f"{n}.log").write_text(f"log of {n}\n")
    return noop_test(
        db=db,
        nodes=("n1", "n2", "n3"),
        remote=CopyRemote(("n1", "n2", "n3")),
        generator=gen.limit(10, _writes()),
        store_dir=tmp_path / "store",
        spec={"logs": str(logs)},
        **kw,
    )


def test_db_lifecycle_and_log_collection(tmp_path: Path) -> None:
    db = LifecycleDB()
    r = _run(_lifecycle_test(tmp_path, db))
    assert r.exit_code == 0
    assert sorted(c for c in db.calls if c[0] == "teardown") == [
        ("teardown", n) for n in ("n1", "n2", "n3")
    ]
    assert (r.run_dir.path / "nodes" / "n2" / "n2.log").read_text() == "log of n2\n"


def test_leave_db_running_skips_teardown(tmp_path: Path) -> None:
    db = LifecycleDB()
    r = _run(_lifecycle_test(tmp_path, db, leave_db_running=True))
    assert r.exit_code == 0 and not [c for c in db.calls if c[0] == "teardown"]


@pytest.mark.parametrize(("exc", "code"), [(SetupError, 254), (RuntimeError, 255)])
def test_setup_failure_still_cleans_up(tmp_path: Path, exc: type[Exception], code: int) -> None:
    db = LifecycleDB(fail_on="n2", exc=exc)
    r = _run(_lifecycle_test(tmp_path, db))
    assert r.exit_code == code and "cannot start db on n2" in (r.error or "")
    assert len([c for c in db.calls if c[0] == "teardown"]) == 3
    assert r.run_dir.results_file.is_file()  # what was recorded (nothing) was still checked
    assert "cannot start db on n2" in r.run_dir.log_file.read_text()


def test_generator_bug_is_a_crash_after_cleanup(tmp_path: Path) -> None:
    def bad(test: Test, ctx: Any) -> Any:
        raise ValueError("generator bug")

    db = LifecycleDB()
    t = _lifecycle_test(tmp_path, db).replace(
        generator=gen.clients(bad), final_generator=gen.nemesis({"f": "heal"})
    )
    r = _run(t)
    assert r.exit_code == 255 and "generator bug" in (r.error or "")
    assert len([c for c in db.calls if c[0] == "teardown"]) == 3
    # the final (healing) generator still ran
    assert [(op.f, op.type) for op in r.run_dir.history()] == [("heal", "invoke"), ("heal", "info")]


def test_history_is_valid_at_concurrency_100(tmp_path: Path) -> None:
    t = build_test(
        {
            "db": "memory",
            "workload": "register",
            "time_limit": 1,
            "concurrency": 100,
            "store": tmp_path,
        }
    )
    r = _run(t)
    assert r.exit_code == 0
    h: History = r.run_dir.history()
    assert len({op.process for op in h}) == 100


def test_parse_concurrency() -> None:
    assert parse_concurrency("2n", 5) == 10
    assert parse_concurrency("n", 3) == 3
    assert parse_concurrency(7, 5) == 7
    with pytest.raises(Exception, match="per node"):
        parse_concurrency("x", 5)
    with pytest.raises(Exception, match="at least 1"):
        parse_concurrency("0", 5)


@pytest.mark.parametrize(
    "value",
    [None, 1, -3, "a\"b\\", "ü", 1.5, True, [1, None], [3, [1, 2]], [1, [None, 2]], [1, [1, 2, 3]],
     [1, "x"], [1, True], [True], [1, 2, 3, 4, 5], {"a": [1]}, [[1, 2], 3]],
)  # fmt: skip
def test_fast_history_lines_match_op_to_json(value: Any) -> None:
    import json

    from jepsy.history import op_to_json
    from jepsy.runner import _line

    for process, error in ((0, None), ("nemesis", {"why": "x"})):
        op = Op(index=4, time=5, process=process, type="ok", f="r\\w", value=value, error=error)
        assert json.loads(_line(op)) == json.loads(op_to_json(op))


class OpensEverySecondTime(NoopClient):
    """``open`` fails on its 2nd and 3rd call; ops on an opened client succeed
    (the rest is :class:`NoopClient`'s)."""

    def __init__(self, counter: list[int] | None = None) -> None:
        self.counter = counter if counter is not None else [0]

    def open(self, test: Test, node: str) -> OpensEverySecondTime:
        self.counter[0] += 1
        if self.counter[0] in (2, 3):
            raise ConnectionRefusedError(f"{node} refused")
        return OpensEverySecondTime(self.counter)


def test_a_client_that_cannot_open_fails_definitely_then_reopens(tmp_path: Path) -> None:
    t = noop_test(
        client=OpensEverySecondTime(),
        generator=gen.limit(20, _writes()),
        concurrency=1,
        store_dir=tmp_path,
    )
    h = _run(t).run_dir.history()
    # setup's client opened (1st); the worker's open (2nd) and the retry before its first op
    # (3rd) fail: that op fails without having been sent; the next retry (4th) opens.
    comps = [op for op in h if op.type != "invoke"]
    assert comps[0].type == "fail" and "could not open a client to n1" in comps[0].error
    assert all(op.type == "ok" for op in comps[1:]) and len(comps) == 20


class ChecksTheFile:
    """On every call, reads ``history.jsonl``: the op's invoke and this process's
    previous completion must already be there (the promise of the combining runner:
    nothing acts on an event before its line is written)."""

    def __init__(self, path: list[Path], seen: dict[Any, int], bad: list[str]) -> None:
        self.path, self.seen, self.bad = path, seen, bad

    def open(self, test: Test, node: str) -> ChecksTheFile:
        return self

    def setup(self, test: Test) -> None:
        pass

    def invoke(self, test: Test, op: Op) -> Op:
        import json

        on_disk = {}
        for line in self.path[0].read_bytes().splitlines():
            d = json.loads(line)
            on_disk[d["index"]] = d
        if op.index not in on_disk:
            self.bad.append(f"invoke {op.index} not on disk when its client was called")
        last = self.seen.get(op.process)
        if last is not None and last not in on_disk:
            self.bad.append(f"{op.process}'s completion {last} not on disk before its next op")
        self.seen[op.process] = op.index  # (its completion's index is not known yet)
        return op.replace(type="ok")

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        pass


def test_events_are_on_disk_before_anything_acts_on_them(tmp_path: Path) -> None:
    from jepsy.store import create_run

    rd = create_run(tmp_path, "ondisk")
    bad: list[str] = []
    t = noop_test(
        client=ChecksTheFile([rd.history_file], {}, bad),
        generator=gen.limit(600, _writes()),
        concurrency=6,
        time_limit=20,
        store_dir=tmp_path,
    )
    r = run(t, run_dir=rd, handle_signals=False)
    h = r.run_dir.history()
    assert not bad, bad[:5]
    assert len(h) == 1200 and [op.index for op in h] == list(range(1200))
    # Each op's completion is written before its process's next invoke.
    last: dict[Any, str] = {}
    for op in h:
        if op.type == "invoke":
            assert last.get(op.process, "ok") != "invoke", op
        last[op.process] = op.type


def test_a_failed_history_write_ends_the_run_without_running_unwritten_ops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jepsy.store import HistoryWriter

    calls = [0]
    real = HistoryWriter.write_lines

    def flaky(self: HistoryWriter, lines: list[str]) -> None:
        calls[0] += 1
        if calls[0] == 50:
            raise OSError(28, "No space left on device")
        real(self, lines)

    monkeypatch.setattr(HistoryWriter, "write_lines", flaky)
    ran: list[int] = []

    class Records(ChecksTheFile):
        def invoke(self, test: Test, op: Op) -> Op:
            ran.append(op.index)
            return super().invoke(test, op)

    from jepsy.store import create_run

    rd = create_run(tmp_path, "flaky")
    bad: list[str] = []
    t = noop_test(
        client=Records([rd.history_file], {}, bad),
        generator=_writes(),
        concurrency=4,
        time_limit=20,
        store_dir=tmp_path,
    )
    t0 = time.monotonic()
    r = run(t, run_dir=rd, handle_signals=False)
    assert time.monotonic() - t0 < 15  # no worker left waiting forever
    assert r.crashed and "No space left" in (r.error or "")
    assert not bad, bad[:5]  # no client ran an op whose invoke was not written
