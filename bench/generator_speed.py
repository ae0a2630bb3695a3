"""How fast the generator stack is: simulate 100,000 client ops of
``clients(stagger(1e-6, mix([...])))`` at concurrency 10 and print ops/s.

The simulator does what the runner does per op under its lock (``op`` +
two ``update`` calls + context bookkeeping), minus threads, so the figure
is an upper bound on what the runner can record.  The machine may be
shared, so it also prints ops per CPU-second of this process.  Run:
``python bench/generator_speed.py``.
"""

from __future__ import annotations

import os
import time

from jepsy import generator as gen


def main() -> None:
    n = 100_000

    def write(test: object, ctx: gen.Context) -> dict[str, object]:
        return {"f": "write", "value": ctx.rng.randint(0, 4)}

    def cas(test: object, ctx: gen.Context) -> dict[str, object]:
        return {"f": "cas", "value": [ctx.rng.randint(0, 4), ctx.rng.randint(0, 4)]}

    g = gen.clients(gen.stagger(1e-6, gen.mix([gen.repeat({"f": "read"}), write, cas])))
    t0 = time.perf_counter()
    c0 = time.process_time()
    ops = gen.simulate(gen.limit(n, g), concurrency=10, max_events=2 * n + 100, latency=5_000)
    cpu = time.process_time() - c0
    dt = time.perf_counter() - t0
    invokes = sum(1 for o in ops if o.is_invoke)
    load = os.getloadavg()[0]
    print(
        f"generator simulate: {invokes / dt:,.0f} ops/s "
        f"({invokes} ops in {dt:.2f} s, {dt / invokes * 1e6:.1f} us/op); "
        f"{invokes / cpu:,.0f} ops per CPU-second ({cpu / invokes * 1e6:.1f} us CPU/op); "
        f"load average {load:.1f}"
    )


if __name__ == "__main__":
    main()
