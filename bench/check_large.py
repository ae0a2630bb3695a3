"""Benchmark: the linearizability checker on large generated histories.

Cases (each run in a fresh process, so peak RSS is its own):

- ``a``: cas-register, 100 independent keys x 1,000 ops, 5 processes per key, 5% info
- ``b``: one key, 10 processes, 5,000 ops, 2% info
- ``b20``: as b with 20% info
- ``c``: kv, 10 keys x 200 ops, 50 clients
- ``cm20``: as b20 with values drawn from 20 (few distinct values defeat pruning)
- ``a-stale``, ``b-stale``, ``b20-stale``: one late impossible read spliced in

Each history is generated (bench/gen.py), written as JSONL, read back with
``read_history`` and checked; it prints parse and check seconds, the
verdict, the peak RSS of the process (and of its worker processes), and
the CPU seconds of parse and check (check: this process plus its workers),
which mean more than wall time on a shared, loaded machine.

    python bench/check_large.py [CASE ...]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen import kv_history, register_history

CASES: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    # name: (generator args, checker args, expected verdict)
    "a": (
        dict(keys=100, ops_per_key=1000, processes=5, p_info=0.05, seed=1),
        {"independent": True},
        True,
    ),
    "b": (dict(ops_per_key=5000, processes=10, p_info=0.02, seed=2), {}, True),
    "b20": (dict(ops_per_key=5000, processes=10, p_info=0.20, seed=3), {}, True),
    "c": (dict(kv=True, keys=10, ops_per_key=200, clients=50, seed=6), {"model": "kv"}, True),
    "cm20": (dict(ops_per_key=5000, processes=10, p_info=0.20, values=20, seed=5), {}, True),
    "a-stale": (
        dict(keys=100, ops_per_key=1000, processes=5, p_info=0.05, seed=1, stale=True),
        {"independent": True},
        False,
    ),
    "b-stale": (dict(ops_per_key=5000, processes=10, p_info=0.02, seed=2, stale=True), {}, False),
    "b20-stale": (dict(ops_per_key=5000, processes=10, p_info=0.20, seed=3, stale=True), {}, False),
}


def run_case(name: str) -> dict[str, Any]:
    from jepsy.checkers.linearizable import linearizable
    from jepsy.history import read_history, write_history

    gargs, cargs, expected = CASES[name]
    gargs = dict(gargs)
    cargs = dict(cargs)
    events = kv_history(**gargs) if gargs.pop("kv", False) else register_history(**gargs)
    from jepsy.history import History

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "history.jsonl"
        write_history(History.from_dicts(events), path)
        t0 = time.perf_counter()
        c0 = time.process_time()
        h = read_history(path)
        t1 = time.perf_counter()
        c1 = time.process_time()
        k1 = _children_cpu()
        model = cargs.pop("model", "cas-register")
        r = linearizable(model, time_limit=60, **cargs).check(None, h, {})  # type: ignore[arg-type]
        t2 = time.perf_counter()
        c2 = time.process_time() + _children_cpu() - k1
    rss = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "case": name,
        "ops": r.details.get("op_count"),
        "valid": r.valid,
        "expected": expected,
        "parse_s": round(t1 - t0, 3),
        "check_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
        "peak_rss_mb": round(rss / 1024, 1),
        "parse_cpu": round(c1 - c0, 3),
        "check_cpu": round(c2 - c1, 3),
    }


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(run_case(sys.argv[2])))
        return 0
    names = sys.argv[1:] or list(CASES)
    bad = 0
    print(
        f"{'case':<10} {'ops':>7} {'verdict':>8} {'parse s':>8} {'check s':>8} {'total s':>8} "
        f"{'RSS MB':>7} {'parse cpu':>9} {'check cpu':>9}"
    )
    for name in names:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True
        )
        d = json.loads(out.stdout.strip().splitlines()[-1])
        ok = d["valid"] == d["expected"]
        bad += not ok
        print(
            f"{name:<10} {d['ops']:>7} {d['valid']!s:>8} {d['parse_s']:>8.3f} "
            f"{d['check_s']:>8.3f} {d['total_s']:>8.3f} {d['peak_rss_mb']:>7.1f} "
            f"{d['parse_cpu']:>9.3f} {d['check_cpu']:>9.3f}"
            + ("" if ok else f"  WRONG (expected {d['expected']})")
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
