"""Benchmark: read 100,000-op histories from EDN and JSONL (target < 1 s each).

"Ops" can be read two ways, and both are measured: 100,000 history lines
(op maps: an invoke and its completion are two, as Jepsen counts the
entries of ``history.edn``), and 100,000 operations (client invocations,
as the shared Knossos manifest counts them: about 200,000 lines).

Generates a register-like history (several processes, reads/writes/cas,
with ``fail`` and ``info`` completions and nemesis events) into a temporary
directory, writes it as ``history.jsonl`` and ``history.edn``, and times
:func:`jepsy.history.read_history` on each (best of ``--repeat`` runs,
in-process, including validation and History construction).  It prints
wall and CPU seconds (CPU of this process and of the child it forks for a
large EDN file, whose second half it rewrites; CPU is what to compare when
other work shares the cores; the exit status is 1 when either format needs
1 s of CPU or more for 100,000 lines) and how fast this machine runs a
reference loop now.

    python bench/parse_history.py [--ops LINES] [--repeat 3] [--profile edn|jsonl]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from jepsy.history import History, Op, read_history, write_history


def generate(n_ops: int, *, processes: int = 10, seed: int = 45) -> History:
    """About ``n_ops`` ops (invokes + completions) of a CAS-register workload."""
    rng = random.Random(seed)
    ops: list[Op] = []
    open_: dict[int, Op] = {}
    proc_of_thread = list(range(processes))
    t = 0
    while len(ops) < n_ops:
        t += rng.randrange(1_000, 200_000)
        if rng.random() < 0.002:
            f = rng.choice(["start-partition", "stop-partition"])
            ops.append(Op(index=len(ops), time=t, process="nemesis", type="info", f=f, value=None))
            continue
        thread = rng.randrange(processes)
        p = proc_of_thread[thread]
        inv = open_.pop(p, None)
        if inv is None:
            f = rng.choice(["read", "write", "cas"])
            value: object = (
                None
                if f == "read"
                else rng.randrange(5)
                if f == "write"
                else [rng.randrange(5), rng.randrange(5)]
            )
            op = Op(index=len(ops), time=t, process=p, type="invoke", f=f, value=value, node="n1")
            open_[p] = op
            ops.append(op)
            continue
        r = rng.random()
        typ = "ok" if r < 0.8 else "fail" if r < 0.9 else "info"
        value = rng.randrange(5) if inv.f == "read" and typ == "ok" else inv.value
        error = None if typ == "ok" else "timeout" if typ == "info" else "cas-failed"
        ops.append(
            Op(
                index=len(ops),
                time=t,
                process=p,
                type=typ,
                f=inv.f,
                value=value,
                node="n1",
                error=error,
            )
        )
        if typ == "info":
            proc_of_thread[thread] = p + processes
    return History(ops)


def bench(path: Path, repeat: int) -> tuple[float, float, int]:
    """Best wall-clock and CPU seconds of ``repeat`` reads, and the op count."""
    best = best_cpu = float("inf")
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        c0 = time.process_time() + _children_cpu()
        h = read_history(path)
        best_cpu = min(best_cpu, time.process_time() + _children_cpu() - c0)
        best = min(best, time.perf_counter() - t0)
        n = len(h)
    return best, best_cpu, n


def _children_cpu() -> float:
    """CPU seconds of reaped child processes (a large EDN file is read by two)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def machine_speed() -> float:
    """Microseconds for sum(range(1000)): about 28 on this machine when idle.

    The figures above scale with it when other work shares the cores."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(200):
            sum(range(1000))
        best = min(best, (time.perf_counter() - t0) / 200)
    return best * 1e6


def lines_for_operations(n: int) -> int:
    """How many lines :func:`generate` needs for ``n`` client invocations."""
    h = generate(3 * n)
    seen = 0
    for i, op in enumerate(h):
        if op.type == "invoke" and op.is_client:
            seen += 1
            if seen > n:
                return i
    return len(h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=None, help="history lines (default: both sizes)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", choices=["edn", "jsonl"])
    args = ap.parse_args(argv)
    if args.ops is not None or args.profile:
        return run(args.ops or 100_000, args.repeat, args.profile)
    status = run(100_000, args.repeat, None)
    print("-- 100,000 operations (client invocations) --")
    run(lines_for_operations(100_000), args.repeat, None)
    return status


def run(n_lines: int, repeat: int, profile: str | None) -> int:
    h = generate(n_lines)
    n_inv = sum(1 for op in h if op.type == "invoke" and op.is_client)
    with tempfile.TemporaryDirectory(prefix="jepsy-bench-") as d:
        paths = {"jsonl": Path(d) / "history.jsonl", "edn": Path(d) / "history.edn"}
        for fmt, p in paths.items():
            write_history(h, p, format="jsonl" if fmt == "jsonl" else "edn")
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            read_history(paths[profile])
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)
            return 0
        worst = 0.0
        for fmt, p in paths.items():
            secs, cpu, n = bench(p, repeat)
            worst = max(worst, cpu)
            size = p.stat().st_size / 1e6
            print(
                f"{fmt:5s} {n} lines ({n_inv} operations) {size:.1f} MB: {secs:.3f} s wall, "
                f"{cpu:.3f} s CPU  ({n / secs:,.0f} lines/s)"
            )
        print(f"machine: sum(range(1000)) takes {machine_speed():.0f} us (about 28 when idle)")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
