"""Benchmark: one etcd register test end to end on local namespace hosts.

A 60 s run with 5 nodes, concurrency 10 and a partition every 10 s (the
defaults), then the check.  Prints ops/s achieved in the main phase, ops
recorded, the check time, setup + teardown time, and the total wall time
including setup and teardown.  Targets: setup + teardown under 10 s, check
time under 10% of the run time.  Needs root (network namespaces).

    python bench/etcd_end_to_end.py [--time-limit 60] [--nodes 5] [--concurrency 10]
                                    [--interval 10] [--store /tmp/jepsy-bench]

Setup + teardown is the wall time of the run minus the span of its history
(the first to the last recorded op), so it covers namespace creation, etcd
start-up until every member serves, the healing phase's waits excluded,
log collection, etcd shutdown and namespace removal.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from jepsy.control.local import LocalRemote
from jepsy.history import read_jsonl
from jepsy.runner import build_test, check_run, run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--store", default="/tmp/jepsy-bench")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    nodes = [f"n{i}" for i in range(1, args.nodes + 1)]
    spec = {
        "db": "etcd",
        "workload": "register",
        "nodes": nodes,
        "concurrency": args.concurrency,
        "time_limit": args.time_limit,
        "nemesis": ["partition"],
        "nemesis_interval": args.interval,
        "nemesis_targets": ["majority", "primaries", "one"],
        "seed": args.seed,
        "store": args.store,
        "etcd_timeout": 2,
    }
    remote = LocalRemote(nodes, cluster="jdbench", subnet="10.93.70.0/24")
    test = build_test(spec).replace(remote=remote)
    t0 = time.monotonic()
    result = run(test, handle_signals=False, check=False)
    t1 = time.monotonic()
    if result.error:
        raise SystemExit(f"the run crashed: {result.error}")
    history = read_jsonl(Path(result.run_dir.path) / "history.jsonl")
    span = (history[-1].time - history[0].time) / 1e9 if len(history) else 0.0
    main_ops = [
        op
        for op in history
        if op.is_client and not op.is_invoke and op.time <= args.time_limit * 1e9
    ]
    t2 = time.monotonic()
    checked = check_run(test, result.run_dir)
    t3 = time.monotonic()
    check_s = t3 - t2
    setup_teardown = (t1 - t0) - span
    print(
        f"etcd register, {args.nodes} nodes, concurrency {args.concurrency}, "
        f"partition every {args.interval:g} s, {args.time_limit:g} s"
    )
    print(f"ops/s (main phase, completed): {len(main_ops) / args.time_limit:.0f}")
    print(f"ops recorded: {len(history)} events ({len(history) // 2} ops)")
    print(f"valid: {checked.valid}")
    print(f"check time: {check_s:.2f} s ({100 * check_s / args.time_limit:.1f}% of the run time)")
    print(f"setup + teardown: {setup_teardown:.2f} s")
    print(f"total wall time incl. setup, teardown and check: {t3 - t0:.2f} s")
    print(f"run directory: {result.run_dir.path}")


if __name__ == "__main__":
    main()
