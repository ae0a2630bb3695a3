"""Benchmark: the report and the perf/timeline checkers on a 100,000-op run.

Builds a run directory in a temporary directory the way ``jepsy test
--workload register`` leaves one: ``history.jsonl`` (independent CAS
registers, values ``[key, v]``, ok/fail/info completions, retired
processes, partition start/stop nemesis ops with grudges as values),
``test.json``, ``results.json`` (from the register workload's checkers)
and ``jepsy.log``.  Then it times, each in a fresh child process (so peak
RSS is that step's own):

- ``perf``: the perf checker on the history (writes the two SVGs);
- ``timeline``: the timeline checker on the history (writes timeline.html);
- ``report``: :func:`jepsy.report.write_report` on the run directory.

The checkers get the history already read (as ``jepsy test`` hands it to
them); the report reads everything itself.  Each step prints the best of
``--repeat`` wall and CPU seconds (CPU is what to compare while other work
shares the cores) and the child's peak RSS, then the load average.  The
exit status is 1 when the report needs 2 s of CPU or more, or perf and
timeline together do.

    python bench/report_speed.py [--ops 100000] [--repeat 3] [--keep DIR]
    python bench/report_speed.py --profile report|perf|timeline
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jepsy.history import History, Op, read_history, write_jsonl

STEPS = ("perf", "timeline", "report")
NEMESIS_EVERY_S = 2.0


def generate(
    n_ops: int, *, keys: int = 40, threads: int = 10, seed: int = 7, stale: int = 0
) -> History:
    """About ``n_ops`` ops of a linearizable independent CAS-register run.

    Every op takes effect at its completion (a moment inside its invoke..
    completion window), so the history is linearizable by construction;
    ``info`` ops take effect or not at random.  A partition starts and
    stops every couple of seconds (Jepsen style: invoke, then info).
    ``stale``: that many keys get one impossible read (of a value never
    written) late in the run, so the report draws linearizability failures."""
    rng = random.Random(seed)
    ops: list[Op] = []
    state: dict[int, int | None] = {}
    proc = list(range(threads))  # thread -> current process id
    open_: dict[int, Op] = {}  # thread -> outstanding invoke
    t = 10_000_000
    next_nemesis = NEMESIS_EVERY_S * 1e9
    partitioned = False
    nodes = ["n1", "n2", "n3", "n4", "n5"]

    def add(**kw: Any) -> Op:
        op = Op(index=len(ops), time=t, **kw)
        ops.append(op)
        return op

    for _ in range(4 * n_ops):  # bounded; ends well before
        if len(ops) >= n_ops:
            break
        t += rng.randrange(20_000, 260_000)
        if t >= next_nemesis:
            next_nemesis += NEMESIS_EVERY_S * 1e9
            f = "stop-partition" if partitioned else "start-partition"
            partitioned = not partitioned
            grudge = {"n1": ["n4", "n5"], "n4": ["n1"]} if partitioned else None
            add(process="nemesis", type="invoke", f=f, value=grudge)
            add(
                process="nemesis",
                type="info",
                f=f,
                value="isolated n1 from n4, n5" if partitioned else "network healed",
            )
            continue
        th = rng.randrange(threads)
        p = proc[th]
        inv = open_.pop(th, None)
        if inv is None:
            k = rng.randrange(keys)
            f = rng.choice(("read", "read", "write", "cas"))
            v: Any = None if f == "read" else rng.randrange(5)
            if f == "cas":
                v = [rng.randrange(5), rng.randrange(5)]
            open_[th] = add(process=p, type="invoke", f=f, value=[k, v], node=nodes[th % 5])
            continue
        k, v = inv.value
        slow = partitioned and th % 5 == 0
        r = rng.random()
        if r < (0.3 if slow else 0.03):
            if rng.random() < 0.5:  # took effect, or not
                if inv.f == "write":
                    state[k] = v
                elif inv.f == "cas" and state.get(k) == v[0]:
                    state[k] = v[1]
            add(process=p, type="info", f=inv.f, value=inv.value, node=inv.node, error="timeout")
            proc[th] = p + threads
            continue
        cur = state.get(k)
        if inv.f == "read" and k < stale and len(ops) > n_ops * 0.8:
            stale = min(stale, k)  # one impossible read per key
            add(process=p, type="ok", f="read", value=[k, 99], node=inv.node)
        elif inv.f == "read":
            add(process=p, type="ok", f="read", value=[k, cur], node=inv.node)
        elif inv.f == "write":
            state[k] = v
            add(process=p, type="ok", f="write", value=inv.value, node=inv.node)
        elif cur == v[0]:
            state[k] = v[1]
            add(process=p, type="ok", f="cas", value=inv.value, node=inv.node)
        else:
            add(process=p, type="fail", f="cas", value=inv.value, node=inv.node, error="mismatch")
    return History(ops)


def build_run(d: Path, n_ops: int, *, stale: int = 0) -> None:
    """A run directory like ``jepsy test --workload register`` leaves."""
    from jepsy.checkers import compose
    from jepsy.checkers.core import safe_check
    from jepsy.checkers.linearizable import linearizable
    from jepsy.checkers.stats import stats
    from jepsy.core import noop_test

    h = generate(n_ops, stale=stale)
    write_jsonl(h, d / "history.jsonl")
    plot = {
        "nemeses": [
            {
                "name": "partition",
                "start": ["start-partition"],
                "stop": ["stop-partition"],
                "color": "#E9A0A0",
            }
        ]
    }
    test = noop_test(name="bench-register", nodes=("n1", "n2", "n3", "n4", "n5"), plot=plot)
    # perf and timeline as in the register workload, but their files are
    # written by the timed steps below.
    checker = compose(
        {"linearizable": linearizable("cas-register", independent=True), "stats": stats()}
    )
    tj = test.to_json() | {
        "spec": {"workload": "register", "db": "memory", "nemesis": ["partition"]}
    }
    (d / "test.json").write_text(json.dumps(tj, indent=2, default=str))
    res = safe_check(checker, test, h, {"dir": d}).to_json()
    for name in ("perf", "timeline"):
        res["checkers"][name] = _run_step(name, d, h)
    (d / "results.json").write_text(json.dumps(res, indent=2, default=str))
    (d / "jepsy.log").write_text("".join(f"INFO line {i}\n" for i in range(200)))


def _run_step(step: str, d: Path, h: History | None) -> Any:
    """Run one step; the checker's result as JSON, or the report's path."""
    from jepsy.checkers.perf import perf
    from jepsy.checkers.timeline import timeline
    from jepsy.core import noop_test

    if step == "report":
        from jepsy.report import write_report

        return str(write_report(d))
    assert h is not None
    test = noop_test(name="bench-register", plot=json.loads((d / "test.json").read_text())["plot"])
    checker = perf() if step == "perf" else timeline()
    return checker.check(test, h, {"dir": d}).to_json()


def child(step: str, d: Path, repeat: int, profile: bool) -> None:
    """Time one step in this (fresh) process; print one JSON line."""
    h = read_history(d / "history.jsonl") if step != "report" else None
    walls, cpus = [], []
    prof = cProfile.Profile() if profile else None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        if prof is not None:
            prof.enable()
        _run_step(step, d, h)
        if prof is not None:
            prof.disable()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - t0)
    if prof is not None:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumtime").print_stats(25)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": min(walls), "cpu": min(cpus), "rss_mb": rss}))


def run_child(step: str, d: Path, repeat: int, profile: bool = False) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", step, "--dir", str(d), "--repeat", str(repeat)]
    if profile:
        argv.append("--profile-child")
    out = subprocess.run(argv, capture_output=not profile, text=True, check=True, timeout=900)
    if profile:
        return {}
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--invalid",
        type=int,
        default=0,
        metavar="KEYS",
        help="plant impossible reads in this many keys (the report then draws failures)",
    )
    ap.add_argument("--keep", help="build the run directory here and keep it")
    ap.add_argument("--dir", help="use this existing run directory (no build)")
    ap.add_argument("--profile", choices=STEPS, help="cProfile one step (stderr)")
    ap.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, Path(args.dir), args.repeat, args.profile_child)
        return 0
    with tempfile.TemporaryDirectory(prefix="jepsy-report-bench-") as tmp:
        if args.dir:
            d = Path(args.dir)
        else:
            d = Path(args.keep) if args.keep else Path(tmp) / "run"
            d.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            build_run(d, args.ops, stale=args.invalid)
            n = (d / "history.jsonl").read_bytes().count(b"\n")
            size = (d / "history.jsonl").stat().st_size / 1e6
            print(f"built {d}: {n} ops, {size:.1f} MB in {time.perf_counter() - t0:.1f} s")
        if args.profile:
            run_child(args.profile, d, 1, profile=True)
            return 0
        res = {s: run_child(s, d, args.repeat) for s in STEPS}
        for s in STEPS:
            r = res[s]
            print(
                f"{s:9s} {r['wall']:6.3f} s wall {r['cpu']:6.3f} s CPU  "
                f"peak RSS {r['rss_mb']:.0f} MB (best of {args.repeat})"
            )
        both = res["perf"]["cpu"] + res["timeline"]["cpu"]
        print(f"perf + timeline: {both:.3f} s CPU")
        sizes = {
            p.name: p.stat().st_size // 1000
            for p in sorted(d.iterdir())
            if p.suffix in (".html", ".svg")
        }
        print("files (kB):", ", ".join(f"{k} {v}" for k, v in sizes.items()))
        print("load average:", " ".join(f"{x:.1f}" for x in os.getloadavg()))
        return 0 if res["report"]["cpu"] < 2.0 and both < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
