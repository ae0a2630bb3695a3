"""Performance: latency and throughput over time, with faults shaded.

Jepsen's ``checker/perf`` draws every op's latency against the time it was
invoked, and the rate of completions per second, with the periods a fault
was active shaded behind the points — the fastest way to see what a
partition or a crash did to the system.  This checker computes the same
numbers and draws them as self-contained SVG (no plotting library, no
network):

- ``latency-raw.svg``: one point per completed client op, x = invoke time
  (s), y = latency (ms, log scale); colour by ``f``, marker by outcome
  (ok circle, info triangle, fail square).  Above 20,000 points, points
  that would overlap are merged (one per pixel cell, so outliers stay) —
  thinned evenly only if that is not enough — and the note on the plot
  says how many of how many are drawn;
- ``rate.svg``: completions per second per ``f`` and outcome.

Both are written into ``opts["dir"]`` when given.  Details carry the
numbers: per ``f`` the count and latency quantiles of ok ops in ms
(``p50 p95 p99 max mean``), throughput (``mean_per_s``, ``peak_per_s``),
and the nemesis intervals.  Always valid.

**Nemesis intervals.**  ``test.plot`` says which nemesis ops to shade:
``{"nemeses": [{"name": "partition", "start": ["start-partition"],
"stop": ["stop-partition"], "color": "#E9A0A0"}]}`` (Jepsen's ``:plot``),
or the short form ``{"partition": {"start": ..., "stop": ...,
"color": ..., "label": ...}}``.  Without hints, ``start-X``/``stop-X``,
``kill``/``start`` and ``pause``/``resume`` pairs are recognised.  An
interval opens at the first start op and closes at the first stop op after
it (Jepsen histories record each nemesis op twice, both ``info``); one never
closed lasts to the end of the history.  Other nemesis ops are drawn as
thin marks.

By example::

    >>> perf()
    perf()
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jepsy.checkers.core import Result
from jepsy.report.svg import PALETTE, Plot

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History

MAX_POINTS = 20_000
_NS = 1e9
_DEFAULT_COLORS = ("#E9A0A0", "#A0C8E9", "#E9D8A0", "#B8E0A8", "#D0B0E8", "#E9C0A0")
_MARKERS = {"ok": "circle", "info": "triangle", "fail": "square"}
_DASHES = {"ok": "", "info": "6 3", "fail": "2 2"}


@dataclass(frozen=True)
class NemesisSpec:
    """Which nemesis ops open and close a shaded interval, and how it looks."""

    name: str
    start: frozenset[str]
    stop: frozenset[str]
    color: str


@dataclass(frozen=True)
class Interval:
    """A period a fault was active: seconds since the test began."""

    name: str
    start: float
    stop: float
    color: str
    start_f: str
    stop_f: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": round(self.start, 6),
            "stop": round(self.stop, 6),
            "color": self.color,
            "start_f": self.start_f,
            "stop_f": self.stop_f,
        }


def _fs(v: Any) -> frozenset[str]:
    if v is None:
        return frozenset()
    if isinstance(v, str):
        return frozenset((str(v),))
    if isinstance(v, Iterable):
        return frozenset(str(x) for x in v)
    return frozenset((str(v),))


def nemesis_specs(plot: Mapping[str, Any] | None, history: History | PerfData) -> list[NemesisSpec]:
    """The intervals to shade: from ``test.plot`` hints, else guessed from nemesis f's."""
    specs: list[NemesisSpec] = []
    plot = plot or {}
    raw: list[tuple[str, Mapping[str, Any]]] = []
    nem = plot.get("nemeses")
    if isinstance(nem, Iterable) and not isinstance(nem, str | Mapping):
        for i, n in enumerate(nem):
            if isinstance(n, Mapping):
                raw.append((str(n.get("name") or n.get("label") or f"nemesis {i}"), n))
    for k, v in plot.items():
        if k != "nemeses" and isinstance(v, Mapping) and ("start" in v or "stop" in v):
            raw.append((str(v.get("label") or k), v))
    for i, (name, n) in enumerate(raw):
        color = str(n.get("color") or n.get("fill-color") or _DEFAULT_COLORS[i % 6])
        specs.append(NemesisSpec(name, _fs(n.get("start")), _fs(n.get("stop")), color))
    if specs:
        return specs
    fs = {f for _t, _typ, f in _data(history).nemesis}
    pairs: list[tuple[str, str, str]] = []
    for f in sorted(fs):
        if f.startswith("start-") and f"stop-{f[6:]}" in fs:
            pairs.append((f[6:], f, f"stop-{f[6:]}"))
        elif f.startswith("start_") and f"stop_{f[6:]}" in fs:
            pairs.append((f[6:], f, f"stop_{f[6:]}"))
    if "kill" in fs:
        pairs.append(("kill", "kill", "start"))
    if "pause" in fs:
        pairs.append(("pause", "pause", "resume"))
    return [
        NemesisSpec(name, frozenset((a,)), frozenset((b,)), _DEFAULT_COLORS[i % 6])
        for i, (name, a, b) in enumerate(pairs)
    ]


def nemesis_intervals(
    history: History | PerfData, plot: Mapping[str, Any] | None = None
) -> tuple[list[Interval], list[tuple[float, str]]]:
    """(shaded intervals, other nemesis events as (seconds, f)) of a history."""
    data = _data(history)
    specs = nemesis_specs(plot, data)
    end = data.end_ns / _NS
    open_: dict[str, tuple[float, str]] = {}
    out: list[Interval] = []
    marks: list[tuple[float, str]] = []
    for tm, typ, f in data.nemesis:
        t = tm / _NS
        used = False
        for s in specs:
            if f in s.start and (f not in s.stop or s.name not in open_):
                used = True
                if s.name not in open_:
                    open_[s.name] = (t, f)
            elif f in s.stop:
                used = True
                if s.name in open_:
                    t0, f0 = open_.pop(s.name)
                    out.append(Interval(s.name, t0, t, s.color, f0, f))
        if not used and typ in ("invoke", "info"):
            marks.append((t, f))
    for s in specs:
        if s.name in open_:
            t0, f0 = open_.pop(s.name)
            out.append(Interval(s.name, t0, end, s.color, f0, None))
    out.sort(key=lambda i: i.start)
    return out, marks


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of an ascending sequence."""
    if not sorted_xs:
        return math.nan
    i = min(len(sorted_xs) - 1, max(0, math.ceil(q * len(sorted_xs)) - 1))
    return sorted_xs[i]


@dataclass(frozen=True)
class PerfData:
    """What the perf plots need from a history, gathered in one pass.

    ``latencies``: (f, outcome) -> [(invoke seconds, latency ms)] of the
    completed client ops whose times are known; ``nemesis``: every nemesis
    op as (time ns, type, f), in history order; ``end_ns``: the latest op
    time (0 for an empty history).  :func:`perf_data` builds it from a
    :class:`History`; the report builds it straight from ``history.jsonl``
    without making :class:`Op` objects."""

    latencies: dict[tuple[str, str], list[tuple[float, float]]]
    nemesis: Sequence[tuple[int, str, str]]
    end_ns: int


def perf_data(history: History) -> PerfData:
    """The :class:`PerfData` of a history."""
    lat: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for inv, comp in history.pairs():
        if comp is None:
            continue
        p = inv.process
        if type(p) is not int and not _is_client(p):
            continue
        t0, t1 = inv.time, comp.time
        if t0 < 0 or t1 < 0:
            continue
        key = (str(inv.f), comp.type)
        pts = lat.get(key)
        if pts is None:
            pts = lat[key] = []
        pts.append((t0 / _NS, (t1 - t0) / 1e6))
    ops = history.ops
    nemesis = [
        (op.time, op.type, str(op.f))
        for op in ops
        if type(op.process) is not int and not _is_client(op.process)
    ]
    end = max((op.time for op in ops), default=0)
    return PerfData(lat, nemesis, end)


def _is_client(p: object) -> bool:
    """``Op.is_client`` for a process, without the property call (hot loops)."""
    return type(p) is int or (isinstance(p, int) and not isinstance(p, bool))


def _data(history: History | PerfData) -> PerfData:
    return history if isinstance(history, PerfData) else perf_data(history)


def latencies(history: History) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(f, outcome) -> [(invoke seconds, latency ms)] for completed client ops."""
    return perf_data(history).latencies


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


@dataclass(frozen=True)
class PerfFigures:
    """The perf plots of a history: SVG texts, summary numbers, and how the
    latency plot was thinned (``""`` when every point is drawn)."""

    latency_svg: str
    rate_svg: str
    details: dict[str, Any]
    thinning: str


def perf_figures(history: History | PerfData, plot: Mapping[str, Any] | None = None) -> PerfFigures:
    """The latency and rate plots and the summary numbers of a history."""
    data = _data(history)
    lat = data.latencies
    intervals, marks = nemesis_intervals(data, plot)
    fs = sorted({f for f, _ in lat})
    colors = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(fs)}
    end = data.end_ns / _NS
    total = sum(len(v) for v in lat.values())
    lp = Plot(
        title="Latency",
        x_label="time (s)",
        y_label="latency (ms)",
        log_y=True,
        note=f"{total} ops",
        max_points=MAX_POINTS,
    )
    lp.x_range = (0.0, float(max(1, math.ceil(end))) if end > 0 else 1.0)
    rp = Plot(title="Throughput", x_label="time (s)", y_label="completions / s")
    rp.x_range = lp.x_range
    for iv in intervals:
        title = f"{iv.name}: {iv.start:.2f}s - {iv.stop:.2f}s ({iv.start_f} / {iv.stop_f or 'never stopped'})"
        for p in (lp, rp):
            p.band(iv.start, iv.stop, color=iv.color, label=iv.name, title=title)
    for t, f in marks[:500]:
        for p in (lp, rp):
            p.band(
                t, t + end / 900, color="#888888", label="nemesis event", title=f"{f} at {t:.2f}s"
            )
    buckets = max(1, math.ceil(end)) if end > 0 else 1
    rate_all = [0] * (buckets + 1)
    summary: dict[str, Any] = {}
    for f in fs:
        for typ in ("ok", "info", "fail"):
            pts = lat.get((f, typ), [])
            if not pts:
                continue
            label = f"{f} {typ}"
            lp.points(label, pts, color=colors[f], marker=_MARKERS[typ])
            counts = [0] * (buckets + 1)
            for t, ms in pts:
                b = int(t + ms / 1000)
                counts[b if b < buckets else buckets] += 1
            rate_all = [a + c for a, c in zip(rate_all, counts, strict=True)]
            rp.line(
                label,
                [(i + 0.5, c) for i, c in enumerate(counts[:buckets])],
                color=colors[f],
                dash=_DASHES[typ],
            )
        oks = sorted(ms for _, ms in lat.get((f, "ok"), []))
        summary[f] = {
            "count": sum(len(lat.get((f, t), [])) for t in ("ok", "info", "fail")),
            "ok_count": len(oks),
            "p50": _r(quantile(oks, 0.5)),
            "p95": _r(quantile(oks, 0.95)),
            "p99": _r(quantile(oks, 0.99)),
            "max": _r(oks[-1]) if oks else None,
            "mean": _r(sum(oks) / len(oks)) if oks else None,
        }
    seconds = max(end, 1e-9)
    details = {
        "latency_ms": summary,
        "throughput": {
            "ops": total,
            "seconds": round(end, 3),
            "mean_per_s": round(total / seconds, 3) if end > 0 else None,
            "peak_per_s": max(rate_all[:buckets], default=0),
        },
        "nemesis_intervals": [iv.to_json() for iv in intervals[:200]],
        "nemesis_interval_count": len(intervals),
    }
    lat_svg = lp.render()
    return PerfFigures(lat_svg, rp.render(), details, lp.thinning)


def perf_plots(
    history: History | PerfData, plot: Mapping[str, Any] | None = None
) -> tuple[str, str, dict[str, Any]]:
    """(latency SVG, rate SVG, summary numbers) for a history."""
    fig = perf_figures(history, plot)
    return fig.latency_svg, fig.rate_svg, fig.details


@dataclass(frozen=True)
class Perf:
    """Latency and throughput plots plus summary numbers; always valid."""

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        lat_svg, rate_svg, details = perf_plots(history, getattr(test, "plot", None))
        d = opts.get("dir")
        if d is not None:
            out = Path(d)
            out.mkdir(parents=True, exist_ok=True)
            (out / "latency-raw.svg").write_text(lat_svg, encoding="utf-8")
            (out / "rate.svg").write_text(rate_svg, encoding="utf-8")
            details = {**details, "files": ["latency-raw.svg", "rate.svg"]}
        return Result(valid=True, details=details)

    def __repr__(self) -> str:
        return "perf()"


def perf() -> Perf:
    """Latency/throughput SVG plots with nemesis activity shaded (Jepsen ``checker/perf``)."""
    return Perf()
