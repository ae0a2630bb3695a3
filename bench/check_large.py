"""Benchmark: the linearizability checker on large generated histories.

Cases (each run in a fresh process, so peak RSS is its own):

- ``a``: cas-register, 100 independent keys x 1,000 ops, 5 processes per key, 5% info
- ``b``: one key, 10 processes, 5,000 ops, 2% info
- ``b20``: as b with 20% info
- ``c``: kv, 10 keys x 200 ops, 50 clients
- ``cm20``: as b20 with values drawn from 20 (few distinct values defeat pruning)
- ``a-stale``, ``b-stale``, ``b20-stale``: one late impossible read spliced in

Each history is generated (bench/gen.py) and written as JSONL by one
process; then a fresh process, holding nothing else (as ``jepsy check FILE``
would), reads it back with ``read_history`` and checks it, ``--repeat``
times (3 by default; the median run by total time is shown).  It prints
parse and check seconds, the verdict, the peak RSS of the process (and of
its worker processes), and the CPU seconds of parse and check (check: this
process plus its workers), which mean more than wall time on a shared,
loaded machine, and the load average at the end.

"ops" are operations as the shared Knossos manifest counts them: client
invocations (an invoke and its completion are one op), so case ``a`` holds
about 200,000 history lines.

    python bench/check_large.py [--repeat N] [CASE ...]
"""

from __future__ import annotations

import json
import os
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


def write_case(name: str, path: str) -> None:
    """Generate case ``name`` and write it to ``path`` as JSONL (in its own process)."""
    from jepsy.history import History, write_history

    gargs = dict(CASES[name][0])
    events = kv_history(**gargs) if gargs.pop("kv", False) else register_history(**gargs)
    write_history(History.from_dicts(events), path)


def run_case(name: str, path: str) -> dict[str, Any]:
    """Read and check the file, in a fresh process that holds nothing else
    (as ``jepsy check FILE`` would)."""
    from jepsy.checkers.linearizable import linearizable
    from jepsy.history import read_history

    _, cargs, expected = CASES[name]
    cargs = dict(cargs)
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
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(run_case(sys.argv[2], sys.argv[3])))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--write":
        write_case(sys.argv[2], sys.argv[3])
        return 0
    args = sys.argv[1:]
    repeat = 3
    if args[:1] == ["--repeat"]:
        repeat = int(args[1])
        args = args[2:]
    names = args or list(CASES)
    bad = 0
    print(f"median of {repeat} runs by total time; each run a fresh process reading the file")
    print(
        f"{'case':<10} {'ops':>7} {'verdict':>8} {'parse s':>8} {'check s':>8} {'total s':>8} "
        f"{'RSS MB':>7} {'parse cpu':>9} {'check cpu':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="jepsy-bench-") as tmp:
        for name in names:
            path = str(Path(tmp) / f"{name}.jsonl")
            subprocess.run([sys.executable, __file__, "--write", name, path], check=True)
            runs = []
            for _ in range(repeat):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", name, path],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            runs.sort(key=lambda d: d["total_s"])
            d = runs[len(runs) // 2]
            ok = all(x["valid"] == x["expected"] for x in runs)
            bad += not ok
            print(
                f"{name:<10} {d['ops']:>7} {d['valid']!s:>8} {d['parse_s']:>8.3f} "
                f"{d['check_s']:>8.3f} {d['total_s']:>8.3f} {d['peak_rss_mb']:>7.1f} "
                f"{d['parse_cpu']:>9.3f} {d['check_cpu']:>9.3f}"
                + ("" if ok else f"  WRONG (expected {d['expected']})")
            )
    print(f"load average: {os.getloadavg()[0]:.2f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
