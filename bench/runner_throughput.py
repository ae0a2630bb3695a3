"""Runner throughput: recorded ops/s and peak RSS against ``--db memory``.

For each concurrency (1, 10, 100 by default) a fresh subprocess runs the
``register`` workload on the memory DB for ``--seconds`` (20 by default),
with no rate limit and no checking, and prints one line:

    concurrency=10 ops/s=... events/s=... ops/cpu_s=... cpu_s=... sys_s=... csw/op=...
        wall_s=... rss_start_mb=... rss_end_mb=... peak_rss_mb=... load=...

``ops/s`` counts completed operations (one invoke + one completion each)
per wall-clock second; ``events/s`` counts history lines.  The machine is
often shared, so wall-clock figures depend on the load: ``ops/cpu_s`` is
completed ops per CPU-second of the jepsy process (all its threads, user +
system), ``sys_s`` the system part, ``csw/op`` context switches per op
(thread hand-offs), ``load`` the 1-minute load average when the run ended.
With several workers each op's client call runs on its own thread, so
threads must take turns on the GIL: ``csw/op`` is about 2-3 at concurrency 10
and 1-2 at 100 (the runner's lock is shared by flat combining and answered
workers are woken a few at a time, see ``jepsy/runner.py``), about 0.1-0.2 at
concurrency 1.  Before that design a run at concurrency 10 went one of two
ways: one thread kept the lock and did nearly every op (``csw/op`` ~0.4), or
the workers fell into a convoy on the lock (``csw/op`` 1-3, ops per
CPU-second down by up to a third), so the figures swung from run to run.
``rss_start``/``rss_end`` are sampled at 10 % and at the end of the run:
flat memory shows the history streams to disk instead of growing in RAM.
Run::

    python bench/runner_throughput.py                 # 3 x 20 s
    python bench/runner_throughput.py --seconds 5 --concurrency 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def one(concurrency: int, seconds: float) -> dict[str, float]:
    import psutil

    from jepsy.runner import build_test, run

    proc = psutil.Process()
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as d:
        test = build_test(
            {
                "db": "memory",
                "workload": "register",
                "concurrency": concurrency,
                "time_limit": seconds,
                "store": d,
            }
        )
        t0 = time.monotonic()

        def progress(stats: object) -> None:
            samples.append((time.monotonic() - t0, proc.memory_info().rss))

        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = time.process_time()
        w0 = time.monotonic()
        r = run(test, progress=progress, progress_interval=0.5, handle_signals=False, check=False)
        cpu = time.process_time() - cpu0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        sys_s = ru1.ru_stime - ru0.ru_stime
        csw = (ru1.ru_nvcsw - ru0.ru_nvcsw) + (ru1.ru_nivcsw - ru0.ru_nivcsw)
        wall = time.monotonic() - w0
        lines = r.ops
    start = next((rss for t, rss in samples if t >= seconds * 0.1), samples[0][1] if samples else 0)
    end = samples[-1][1] if samples else 0
    return {
        "concurrency": concurrency,
        "ops/s": round(lines / 2 / seconds),
        "events/s": round(lines / seconds),
        "ops/cpu_s": round(lines / 2 / cpu) if cpu else 0,
        "cpu_s": round(cpu, 2),
        "sys_s": round(sys_s, 2),
        "csw/op": round(csw / max(1, lines / 2), 2),
        "wall_s": round(wall, 2),
        "rss_start_mb": round(start / 2**20, 1),
        "rss_end_mb": round(end / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, action="append")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(one(a.one, a.seconds)))
        return
    for c in a.concurrency or [1, 10, 100]:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(c), "--seconds", str(a.seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
        d = json.loads(out.stdout.strip().splitlines()[-1])
        d["load"] = round(os.getloadavg()[0], 1)
        print(" ".join(f"{k}={v}" for k, v in d.items()), flush=True)


if __name__ == "__main__":
    main()
