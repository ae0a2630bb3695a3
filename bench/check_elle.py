"""Benchmark: Elle-style list-append checking of a large generated history.

Generates a history of N transactions (default 20,000) executed against a
serializable in-memory store by simulated concurrent processes, then prints
the check time, transactions/s and peak RSS.  A second run splices in one
stale read and prints the time to find the anomaly.

    python bench/check_elle.py [N]
"""

from __future__ import annotations

import random
import resource
import sys
import time
from typing import Any

from jepsy.checkers.elle import list_append
from jepsy.core import noop_test
from jepsy.history import History, Op


def generate(n: int, *, processes: int = 10, keys: int = 20, seed: int = 7) -> History:
    """Interleaved invokes/completions; txns take effect at completion (serializable)."""
    rng = random.Random(seed)
    lists: dict[int, list[int]] = {}
    ops: list[Op] = []
    pending: dict[int, list[list[Any]]] = {}
    nxt = 0
    done = 0
    while done < n:
        p = rng.randrange(processes)
        if p in pending:
            mops = pending.pop(p)
            out = []
            for f, k, v in mops:
                if f == "append":
                    lists.setdefault(k, []).append(v)
                    out.append([f, k, v])
                else:
                    out.append([f, k, list(lists.get(k, []))])
            ops.append(Op(index=len(ops), time=len(ops), process=p, type="ok", f="txn", value=out))
            done += 1
        else:
            mops = []
            for _ in range(rng.randint(1, 4)):
                k = rng.randrange(keys) + keys * (nxt // (keys * 64))  # rotate keys like Jepsen
                if rng.random() < 0.5:
                    nxt += 1
                    mops.append(["append", k, nxt])
                else:
                    mops.append(["r", k, None])
            pending[p] = mops
            ops.append(
                Op(index=len(ops), time=len(ops), process=p, type="invoke", f="txn", value=mops)
            )
    return History(ops)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    h = generate(n)
    checker = list_append(consistency_models=("strict-serializable",))
    t0 = time.perf_counter()
    r = checker.check(noop_test(), h, {})
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"list-append valid history: {n} txns, {r.details['edge_count']} edges, valid={r.valid}")
    print(f"  check time {dt:.2f} s  ({n / dt:,.0f} txns/s)  peak RSS {rss:.0f} MB")
    # splice a stale read into the last quarter
    ops = list(h)
    for i in range(len(ops) - 1, len(ops) * 3 // 4, -1):
        op = ops[i]
        if op.type != "ok":
            continue
        reads = [j for j, m in enumerate(op.value) if m[0] == "r" and len(m[2]) >= 3]
        if reads:
            new = [list(m) for m in op.value]
            new[reads[0]][2] = new[reads[0]][2][:1]
            ops[i] = op.replace(value=new)
            break
    t0 = time.perf_counter()
    r2 = checker.check(noop_test(), History(ops), {})
    dt2 = time.perf_counter() - t0
    print(
        f"with one stale read spliced in: valid={r2.valid} {r2.details['anomaly_types']} in {dt2:.2f} s"
    )


if __name__ == "__main__":
    main()
