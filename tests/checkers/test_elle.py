"""Elle-style checkers: each anomaly on a hand-made history, and no false
alarms on histories recorded from a real serializable store under threads."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from jepsy.checkers.elle import list_append, rw_register
from jepsy.core import noop_test
from jepsy.errors import ConfigError
from jepsy.history import History, Op

Mops = list[list[Any]]


def hist(*txns: tuple[int, str, Mops, Mops | None], overlap: bool = False) -> History:
    """Each txn: (process, completion type, invoke mops, completion mops).

    Sequential by default (each invoke followed by its completion); with
    ``overlap`` all invokes come first, then all completions."""
    ops: list[Op] = []
    invokes = [Op(process=p, type="invoke", f="txn", value=inv) for p, _, inv, _ in txns]
    comps = [
        Op(process=p, type=typ, f="txn", value=(comp if comp is not None else inv))  # type: ignore[arg-type]
        for p, typ, inv, comp in txns
    ]
    if overlap:
        ops = invokes + comps
    else:
        for i, c in zip(invokes, comps, strict=True):
            ops += [i, c]
    return History([o.replace(index=n, time=n) for n, o in enumerate(ops)])


def check(h: History, models: tuple[str, ...] = ("serializable",)) -> Any:
    return list_append(consistency_models=models).check(noop_test(), h, {})


def test_serial_history_is_valid() -> None:
    h = hist(
        (0, "ok", [["append", "x", 1]], None),
        (1, "ok", [["r", "x", None], ["append", "x", 2]], [["r", "x", [1]], ["append", "x", 2]]),
        (0, "ok", [["r", "x", None]], [["r", "x", [1, 2]]]),
    )
    r = check(h, ("strict-serializable",))
    assert r.valid is True, r.details
    assert r.details["txn_count"] == 3


def test_g0_write_cycle() -> None:
    h = hist(
        (0, "ok", [["append", "x", 1], ["append", "y", 1]], None),
        (1, "ok", [["append", "x", 2], ["append", "y", 2]], None),
        (2, "ok", [["r", "x", None], ["r", "y", None]], [["r", "x", [1, 2]], ["r", "y", [2, 1]]]),
        overlap=True,
    )
    r = check(h)
    assert r.valid is False
    assert "G0" in r.details["anomaly_types"]
    story = r.details["anomalies"]["G0"][0]["explanation"]
    assert "T0" in story and "T1" in story and "cycle" in story


def test_g1a_aborted_read() -> None:
    h = hist(
        (0, "fail", [["append", "x", 1]], None),
        (1, "ok", [["r", "x", None]], [["r", "x", [1]]]),
    )
    r = check(h)
    assert r.valid is False and "G1a" in r.details["anomaly_types"]


def test_g1b_intermediate_read() -> None:
    h = hist(
        (0, "ok", [["append", "x", 1], ["append", "x", 2]], None),
        (1, "ok", [["r", "x", None]], [["r", "x", [1]]]),
        overlap=True,
    )
    r = check(h)
    assert r.valid is False and "G1b" in r.details["anomaly_types"]


def test_g1c_circular_information_flow() -> None:
    h = hist(
        (0, "ok", [["append", "x", 1], ["r", "y", None]], [["append", "x", 1], ["r", "y", [1]]]),
        (1, "ok", [["append", "y", 1], ["r", "x", None]], [["append", "y", 1], ["r", "x", [1]]]),
        overlap=True,
    )
    r = check(h)
    assert r.valid is False and "G1c" in r.details["anomaly_types"]


def test_g_single_read_skew() -> None:
    h = hist(
        (0, "ok", [["append", "x", 1], ["append", "y", 1]], None),
        (1, "ok", [["r", "x", None], ["r", "y", None]], [["r", "x", []], ["r", "y", [1]]]),
        (2, "ok", [["r", "x", None]], [["r", "x", [1]]]),
        overlap=True,
    )
    r = check(h)
    assert r.valid is False
    assert "G-single" in r.details["anomaly_types"]
    # snapshot isolation forbids G-single too
    assert check(h, ("snapshot-isolation",)).valid is False
    # read committed allows it
    assert check(h, ("read-committed",)).valid is True


def test_g2_write_skew() -> None:
    h = hist(
        (0, "ok", [["r", "x", None], ["append", "y", 1]], [["r", "x", []], ["append", "y", 1]]),
        (1, "ok", [["r", "y", None], ["append", "x", 1]], [["r", "y", []], ["append", "x", 1]]),
        (2, "ok", [["r", "x", None], ["r", "y", None]], [["r", "x", [1]], ["r", "y", [1]]]),
        overlap=True,
    )
    r = check(h)
    assert r.valid is False
    assert "G2" in r.details["anomaly_types"]
    assert "G-single" not in r.details["anomaly_types"]
    # write skew is allowed under snapshot isolation
    assert check(h, ("snapshot-isolation",)).valid is True


def test_incompatible_order_and_duplicates_and_garbage() -> None:
    h = hist(
        (0, "ok", [["append", "x", 1]], None),
        (1, "ok", [["append", "x", 2]], None),
        (2, "ok", [["r", "x", None]], [["r", "x", [1, 2]]]),
        (3, "ok", [["r", "x", None]], [["r", "x", [2, 1]]]),
        (4, "ok", [["r", "x", None]], [["r", "x", [1, 1, 99]]]),
    )
    r = check(h)
    assert r.valid is False
    kinds = set(r.details["anomaly_types"])
    assert {"incompatible-order", "duplicate-elements", "garbage-read"} <= kinds


def test_internal_inconsistency() -> None:
    h = hist(
        (0, "ok", [["append", "x", 5], ["r", "x", None]], [["append", "x", 5], ["r", "x", []]])
    )
    r = check(h)
    assert r.valid is False and "internal" in r.details["anomaly_types"]


def test_realtime_violation_only_under_strict() -> None:
    # T0 appends x=1 and completes; T1 starts afterwards yet reads x empty; T2 sees [1].
    h = hist(
        (0, "ok", [["append", "x", 1]], None),
        (1, "ok", [["r", "x", None]], [["r", "x", []]]),
        (2, "ok", [["r", "x", None]], [["r", "x", [1]]]),
    )
    assert check(h, ("serializable",)).valid is True
    r = check(h, ("strict-serializable",))
    assert r.valid is False
    assert any(t.endswith("-realtime") for t in r.details["anomaly_types"])


def test_info_txn_that_took_effect_is_a_node() -> None:
    h = hist(
        (0, "info", [["append", "x", 1]], None),
        (1, "ok", [["r", "x", None]], [["r", "x", [1]]]),
    )
    assert check(h).valid is True


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown consistency model 'bogus'"):
        list_append(consistency_models=("bogus",))


def test_malformed_txn_gives_unknown_not_crash() -> None:
    h = History(
        [
            Op(index=0, process=0, type="invoke", f="txn", value="nonsense"),
            Op(index=1, process=0, type="ok", f="txn", value="nonsense"),
        ]
    )
    r = check(h)
    assert r.valid == "unknown"
    assert r.details["format_problems"]


# -- rw-register ----------------------------------------------------------------


def rw(h: History, models: tuple[str, ...] = ("serializable",)) -> Any:
    return rw_register(consistency_models=models).check(noop_test(), h, {})


def test_rw_register_write_skew() -> None:
    h = hist(
        (0, "ok", [["r", "x", None], ["w", "y", 1]], [["r", "x", None], ["w", "y", 1]]),
        (1, "ok", [["r", "y", None], ["w", "x", 1]], [["r", "y", None], ["w", "x", 1]]),
        overlap=True,
    )
    r = rw(h)
    assert r.valid is False and "G2" in r.details["anomaly_types"]


def test_rw_register_aborted_and_intermediate_reads() -> None:
    h = hist(
        (0, "fail", [["w", "x", 1]], None),
        (1, "ok", [["w", "y", 1], ["w", "y", 2]], None),
        (2, "ok", [["r", "x", None], ["r", "y", None]], [["r", "x", 1], ["r", "y", 1]]),
    )
    r = rw(h)
    assert r.valid is False
    assert {"G1a", "G1b"} <= set(r.details["anomaly_types"])


def test_rw_register_lost_update_is_g_single_free_but_g2() -> None:
    # Both read x=None and write: classic lost update; forbidden by serializable.
    h = hist(
        (0, "ok", [["r", "x", None], ["w", "x", 1]], [["r", "x", None], ["w", "x", 1]]),
        (1, "ok", [["r", "x", None], ["w", "x", 2]], [["r", "x", None], ["w", "x", 2]]),
        overlap=True,
    )
    r = rw(h)
    assert r.valid is False


# -- no false alarms on real serializable executions ----------------------------


class _Store:
    """A serializable, linearizable store: one lock around every txn."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lists: dict[str, list[int]] = {}
        self.regs: dict[str, int | None] = {}

    def run(self, mops: Mops) -> Mops:
        with self.lock:
            out: Mops = []
            for f, k, v in mops:
                if f == "append":
                    self.lists.setdefault(k, []).append(v)
                    out.append([f, k, v])
                elif f == "w":
                    self.regs[k] = v
                    out.append([f, k, v])
                elif f == "r" and isinstance(v, str):  # register read marker
                    out.append(["r", k, self.regs.get(k)])
                else:
                    out.append([f, k, list(self.lists.get(k, []))])
            return out


def _record(seed: int, kind: str, n_threads: int = 4, n_txns: int = 60) -> History:
    rng = random.Random(seed)
    store = _Store()
    ops: list[Op] = []
    lock = threading.Lock()
    counter = [0]
    t0 = time.monotonic_ns()

    def emit(op: Op) -> None:
        with lock:
            ops.append(op.replace(index=len(ops), time=time.monotonic_ns() - t0))

    plans: list[list[Mops]] = []
    for _ in range(n_threads):
        plan = []
        for _ in range(n_txns // n_threads):
            mops: Mops = []
            for _ in range(rng.randint(1, 4)):
                k = rng.choice("xyz")
                if rng.random() < 0.5:
                    with lock:
                        counter[0] += 1
                        v = counter[0]
                    mops.append(["append", k, v] if kind == "append" else ["w", k, v])
                else:
                    mops.append(["r", k, None] if kind == "append" else ["r", k, "?"])
            plan.append(mops)
        plans.append(plan)

    def worker(p: int) -> None:
        r = random.Random(seed * 100 + p)
        for mops in plans[p]:
            inv_mops = [[f, k, None if f == "r" else v] for f, k, v in mops]
            emit(Op(process=p, type="invoke", f="txn", value=inv_mops))
            time.sleep(r.random() * 0.0005)
            res = store.run(mops)
            time.sleep(r.random() * 0.0005)
            emit(Op(process=p, type="ok", f="txn", value=res))

    threads = [threading.Thread(target=worker, args=(p,)) for p in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return History(ops)


@pytest.mark.parametrize("seed", range(8))
def test_list_append_no_false_alarms_on_real_serializable_store(seed: int) -> None:
    h = _record(seed, "append")
    r = check(h, ("strict-serializable",))
    assert r.valid is True, r.details["anomaly_types"]


@pytest.mark.parametrize("seed", range(8))
def test_rw_register_no_false_alarms_on_real_serializable_store(seed: int) -> None:
    h = _record(seed, "register")
    r = rw(h, ("strict-serializable",))
    assert r.valid is True, r.details["anomaly_types"]


def test_list_append_detects_a_spliced_stale_read() -> None:
    """Rewrite one late read to an earlier, shorter version: a real anomaly."""
    h = _record(3, "append", n_txns=80)
    ops = list(h)
    # find an ok read of a list with >= 2 elements late in the history
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if op.type == "ok":
            for j, (f, _k, v) in enumerate(op.value):
                if f == "r" and len(v) >= 2:
                    new = [list(m) for m in op.value]
                    new[j][2] = v[:1]
                    ops[i] = op.replace(value=new)
                    break
            else:
                continue
            break
    r = check(History(ops), ("strict-serializable",))
    assert r.valid is False, "a stale read after later appends completed must be caught"
