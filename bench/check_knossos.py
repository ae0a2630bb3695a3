"""Benchmark: the linearizability checker over the shared Knossos histories.

Reads every file listed in ``../shared/histories/knossos/MANIFEST.json``
(parse time counted separately, median of ``--repeat`` passes), checks it with its model (registers start
unset; the multi-register file with its stated initial mapping), verifies
the verdict against the manifest and prints the total and slowest-file
check time (median of ``--repeat`` passes) plus the parse time.

    python bench/check_knossos.py [--repeat 3] [--dir ../shared/histories/knossos]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jepsy.edn  # noqa: F401  (imported here: module import is not parsing)
from jepsy.checkers.linearizable import get_model, linearizable
from jepsy.history import History, read_history

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "histories" / "knossos"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    manifest = json.loads((args.dir / "MANIFEST.json").read_text())
    files = manifest["files"]
    parses: list[float] = []
    parse_cpus: list[float] = []
    histories: list[tuple[dict[str, object], History]] = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        c0 = time.process_time()
        histories = [(f, read_history(args.dir / str(f["file"]))) for f in files]
        parses.append(time.perf_counter() - t0)
        parse_cpus.append(time.process_time() - c0)
    parse = statistics.median(parses)
    parse_cpu = statistics.median(parse_cpus)
    totals: list[float] = []
    cpus: list[float] = []
    per_file: dict[str, list[float]] = {}
    wrong = []
    for _ in range(args.repeat):
        total = 0.0
        cpu = time.process_time()
        for f, h in histories:
            init = {"x": 0, "y": 0} if f["model"] == "multi-register" else None
            checker = linearizable(get_model(str(f["model"]), init=init))
            t = time.perf_counter()
            r = checker.check(None, h, {})  # type: ignore[arg-type]
            dt = time.perf_counter() - t
            total += dt
            per_file.setdefault(str(f["file"]), []).append(dt)
            if r.valid != f["expected_valid"]:
                wrong.append(str(f["file"]))
        totals.append(total)
        cpus.append(time.process_time() - cpu)
    slowest = max(per_file.items(), key=lambda kv: statistics.median(kv[1]))
    print(f"files: {len(files)}  ops: {manifest['counts']['operations_total']}")
    print(f"verdicts: {len(files) * args.repeat - len(wrong)}/{len(files) * args.repeat} as stated")
    print(
        f"parse (median of {args.repeat}): {parse:.3f} s (CPU {parse_cpu:.3f} s); "
        f"first pass {parses[0]:.3f} s"
    )
    print(
        f"check total (median of {args.repeat}): {statistics.median(totals):.3f} s "
        f"(CPU {statistics.median(cpus):.3f} s)"
    )
    print(f"slowest file: {slowest[0]} {statistics.median(slowest[1]) * 1000:.1f} ms")
    print(f"parse + check: {parse + statistics.median(totals):.3f} s")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    if wrong:
        print("WRONG:", sorted(set(wrong)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
