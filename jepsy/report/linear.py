"""A picture of a linearizability failure (Knossos ``linear.svg``, Porcupine's view).

When the linearizable checker finds no legal order it reports the op that
could not be linearized, the last ok op before it, the model states the
system could have been in (``configs``) and the longest linearizable
prefixes it found (``final_paths``) — see
:mod:`jepsy.checkers.linearizable.explain`.  Numbers alone are hard to read;
this module draws the ops around the failure as bars on a time axis, one
lane per process, from each op's invoke to its completion (never-completed
and ``info`` ops run to the right edge, hatched), the failing op in red and
the previous ok op outlined in blue.  With the history at hand, every op
overlapping that time window is drawn (those nearest the failing op), and
the 4 ops just before it for context (at most 20 in all); the time axis is ordinal (Porcupine's): invokes and completions
evenly spaced in their real order, so short ops stay readable; without it only the ops named in the explanation.

:func:`failure_html` wraps the picture with the possible states and the
final paths as HTML; everything shown is escaped.

By example::

    >>> svg = linear_svg({"op": {"index": 3, "process": 0, "type": "ok",
    ...                          "f": "read", "value": 2, "time": 30}})
    >>> svg.startswith("<svg")
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jepsy.history import History, Op
from jepsy.report.svg import esc

MAX_OPS = 20
MAX_CONTEXT = 4  # ops drawn from before the window


@dataclass
class _Bar:
    process: Any
    f: str
    value: Any
    result: Any
    outcome: str  # ok | info | fail | pending
    t0: float
    t1: float | None  # None: never completed (runs to the right edge)
    index: int
    error: Any = None


def _j(v: Any) -> str:
    try:
        return json.dumps(v, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(v)


def _label(b: _Bar) -> str:
    s = b.f if b.value is None else f"{b.f} {_j(b.value)}"
    if b.outcome == "ok" and b.result != b.value:
        s += f" \u2192 {_j(b.result)}"
    return s


def _list(v: Any) -> list[Any]:
    """``v`` when it is a list, else empty (explanations come from JSON files)."""
    return v if isinstance(v, list) else []


def _ops_named(details: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for k in ("op", "previous_ok"):
        if isinstance(details.get(k), Mapping):
            out.append(details[k])
    for c in _list(details.get("configs")):
        if isinstance(c, Mapping):
            out.extend(p for p in _list(c.get("pending")) if isinstance(p, Mapping))
    for path in _list(details.get("final_paths")):
        steps = path.get("ops") if isinstance(path, Mapping) else path
        if not isinstance(steps, list):
            continue
        for s in steps[-8:]:
            op = s.get("op", s) if isinstance(s, Mapping) else None
            if isinstance(op, Mapping):
                out.append(op)
    return out


def _bar_from_pair(inv: Op, comp: Op | None, unwrap: bool) -> _Bar:
    def v(x: Any) -> Any:
        if unwrap and isinstance(x, list | tuple) and len(x) == 2:
            return x[1]
        return x

    outcome = "pending" if comp is None else comp.type
    return _Bar(
        process=inv.process,
        f=str(inv.f),
        value=v(inv.value),
        result=None if comp is None else v(comp.value),
        outcome=outcome,
        t0=float(inv.time),
        t1=None if comp is None or comp.type == "info" else float(comp.time),
        index=inv.index,
        error=None if comp is None else comp.error,
    )


def _pair(history: History, index: int) -> tuple[Op, Op | None] | None:
    try:
        op = history.by_index(index)
    except (KeyError, IndexError):
        return None
    if op.is_invoke:
        return op, history.completion(op)
    inv = history.invocation(op)
    return (inv, op) if inv is not None else (op, None)


def _bars(
    details: Mapping[str, Any], history: History | None, key: Any
) -> tuple[list[_Bar], int | None, int | None]:
    """(bars, index of the failing op's invoke, index of previous ok's invoke)."""
    if key is None and details.get("key") is not None:
        key = details["key"]  # an independent history's failing key
    named = _ops_named(details)
    fail_i: int | None = None
    prev_i: int | None = None
    if history is not None and named:
        pairs: dict[int, tuple[Op, Op | None]] = {}
        # The window is set by the failing op, the previous ok op and the
        # pending ops; final-path ops only join when they fall inside it.
        core = [details.get("op"), details.get("previous_ok")]
        for c in _list(details.get("configs")):
            if isinstance(c, Mapping):
                core.extend(_list(c.get("pending")))
        for d in core:
            if not isinstance(d, Mapping):
                continue
            idx = d.get("index")
            if isinstance(idx, int) and not isinstance(idx, bool):
                p = _pair(history, idx)
                if p is not None:
                    pairs[p[0].index] = p
                    if d is details.get("op"):
                        fail_i = p[0].index
                    elif d is details.get("previous_ok"):
                        prev_i = p[0].index
        if pairs:
            times = [p[0].time for p in pairs.values()] + [
                p[1].time for p in pairs.values() if p[1] is not None
            ]
            lo, hi = min(times), max(times)
            for d in named:
                idx = d.get("index")
                if isinstance(idx, int) and not isinstance(idx, bool):
                    p = _pair(history, idx)
                    if p is not None and p[0].time <= hi and (p[1] is None or p[1].time >= lo):
                        pairs.setdefault(p[0].index, p)
            centre = pairs[fail_i][0].time if fail_i in pairs else (lo + hi) / 2
            unwrap = key is not None
            cands: list[tuple[Op, Op | None]] = list(pairs.values())
            same: dict[tuple[type, Any], bool] = {}  # key value -> _same_key(it, key)
            for inv, comp in history.pairs():  # the cheap tests first: this sees every op
                if inv.time > hi or inv.index in pairs:
                    continue
                if type(inv.process) is not int and not inv.is_client:
                    continue
                if comp is not None and comp.type == "fail":
                    continue
                if unwrap:
                    v = inv.value
                    if not (
                        isinstance(v, list | tuple)
                        and len(v) == 2
                        and _same_key_memo(v[0], key, same)
                    ):
                        continue
                cands.append((inv, comp))
            named_set = set(pairs)

            def rank(p: tuple[Op, Op | None]) -> tuple[int, float]:
                inv, comp = p
                end = comp.time if comp is not None and not comp.is_info else hi
                if inv.index in named_set:
                    return (0, 0.0)
                if end >= lo:  # overlaps the window
                    return (1, abs(inv.time - centre))
                return (2, float(lo - end))  # context before it, nearest first

            cands.sort(key=rank)
            before = [p for p in cands if rank(p)[0] == 2][:MAX_CONTEXT]
            cands = [p for p in cands if rank(p)[0] < 2][: MAX_OPS - len(before)] + before
            bars = [_bar_from_pair(i, c, unwrap) for i, c in cands]
            return bars, fail_i, prev_i
    # No history: draw the named ops at their recorded times.
    bars = []
    seen: set[Any] = set()
    for d in named:
        ident = d.get("index", id(d))
        if ident in seen:
            continue
        seen.add(ident)
        t = d.get("time")
        t = float(t) if isinstance(t, int | float) and not isinstance(t, bool) else float(len(bars))
        typ = "pending" if d.get("pending") else str(d.get("type") or "ok")
        outcome = typ if typ in ("ok", "info", "fail") else "pending"
        b = _Bar(
            process=d.get("process", "?"),
            f=str(d.get("f", "?")),
            value=d.get("value"),
            result=d.get("value"),
            outcome=outcome,
            t0=t,
            t1=t,
            index=d["index"] if isinstance(d.get("index"), int) else -1,
        )
        bars.append(b)
        if d is details.get("op"):
            fail_i = b.index
        elif d is details.get("previous_ok"):
            prev_i = b.index
    return bars[:MAX_OPS], fail_i, prev_i


def _same_key(a: Any, b: Any) -> bool:
    if a == b:
        return True
    return str(a) == str(b) or _j(a) == str(b)


def _same_key_memo(a: Any, b: Any, memo: dict[tuple[type, Any], bool]) -> bool:
    """:func:`_same_key`, remembered per value of ``a`` (a history has few keys)."""
    k = (type(a), a)
    try:
        hit = memo.get(k)
    except TypeError:  # an unhashable key value
        return _same_key(a, b)
    if hit is None:
        hit = memo[k] = _same_key(a, b)
    return hit


_FILL = {"ok": "#cfe8c9", "info": "#ffe2b3", "fail": "#eeeeee", "pending": "#e6e6e6"}


def linear_svg(
    details: Mapping[str, Any], *, history: History | None = None, key: Any = None
) -> str:
    """The failure picture as SVG text (empty SVG note when there is nothing to draw)."""
    bars, fail_i, prev_i = _bars(details, history, key)
    if not bars:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="30">'
            '<text x="4" y="20" font-size="12">no ops to draw</text></svg>'
        )
    procs = sorted({b.process for b in bars}, key=lambda p: (not isinstance(p, int), str(p)))
    lane = {p: i for i, p in enumerate(procs)}
    # Porcupine-style axis: events (invokes, completions) in time order, evenly
    # spaced, so short ops stay readable next to long ones.
    events = sorted({b.t0 for b in bars} | {b.t1 for b in bars if b.t1 is not None})
    rank = {t: i for i, t in enumerate(events)}
    left, right, top, lane_h = 90, 40, 36, 34
    step = max(34.0, 820.0 / max(1, len(events)))
    pw = step * len(events)
    width = int(left + pw + right)
    right_edge = left + pw + 10
    height = top + lane_h * len(procs) + 40

    def x(t: float) -> float:
        return left + rank[t] * step + step / 2

    o = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, '
        'sans-serif" font-size="11" role="img" aria-label="linearizability failure">',
        "<defs>"
        '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffe2b3"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#e0a040" stroke-width="2"/></pattern>'
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{left}" y="20" font-size="13" font-weight="600" fill="#222">'
        "Ops around the failure (events in real-time order \u2192)</text>",
    ]
    for p, i in lane.items():
        y = top + i * lane_h
        if i % 2 == 0:
            o.append(f'<rect x="0" y="{y}" width="{width}" height="{lane_h}" fill="#f7f7f9"/>')
        o.append(
            f'<text x="{left - 10}" y="{y + lane_h / 2 + 4:.0f}" text-anchor="end" fill="#444">'
            f"process {esc(p)}</text>"
        )
    for b in sorted(bars, key=lambda b: (b.index == fail_i, b.index == prev_i)):
        y = top + lane[b.process] * lane_h + 5
        x0 = x(b.t0) - step / 2 + 2
        x1 = x(b.t1) + step / 2 - 2 if b.t1 is not None else right_edge
        w = max(6.0, x1 - x0)
        fill = "url(#hatch)" if b.t1 is None else _FILL.get(b.outcome, "#e6e6e6")
        stroke, sw = "#888", 1.0
        if b.index == fail_i:
            fill = "#f4a6a6" if b.t1 is not None else fill
            stroke, sw = "#c62828", 2.5
        elif b.index == prev_i:
            stroke, sw = "#1565c0", 2.0
        label = _label(b)
        max_chars = max(0, int((w - 8) / 6.2))
        shown = label if len(label) <= max_chars else label[: max(0, max_chars - 1)] + "\u2026"
        title = f"op {b.index} process {b.process}: {label} ({b.outcome})"
        if b.error is not None:
            title += f" error: {_j(b.error)}"
        if b.index == fail_i:
            title = "cannot be linearized: " + title
        o.append(
            f'<g><title>{esc(title)}</title><rect x="{x0:.1f}" y="{y}" width="{w:.1f}" '
            f'height="{lane_h - 10}" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>'
        )
        if max_chars >= 2:
            o.append(
                f'<text x="{x0 + 4:.1f}" y="{y + (lane_h - 10) / 2 + 4:.1f}" fill="#111">'
                f"{esc(shown)}</text>"
            )
        o.append("</g>")
    ly = height - 14
    legend = [
        ("#f4a6a6", "#c62828", "cannot be linearized"),
        ("#cfe8c9", "#1565c0", "previous ok op"),
        ("#cfe8c9", "#888", "ok"),
        ("url(#hatch)", "#888", "info / never completed"),
    ]
    lx = left
    for fill, stroke, text in legend:
        o.append(
            f'<rect x="{lx}" y="{ly - 10}" width="16" height="12" rx="2" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{lx + 22}" y="{ly}" fill="#333">{esc(text)}</text>'
        )
        lx += 40 + 7 * len(text)
    o.append("</svg>")
    return "\n".join(o)


def _op_text(d: Any) -> str:
    if not isinstance(d, Mapping):
        return str(d)
    s = f"{d.get('f', '?')} {_j(d.get('value'))}"
    bits = [f"process {d.get('process', '?')}", str(d.get("type", ""))]
    if d.get("pending"):
        bits.append("never completed")
    if "index" in d:
        bits.append(f"op {d['index']}")
    return f"{s} ({', '.join(b for b in bits if b)})"


def _li(items: Iterable[str]) -> str:
    return "".join(f"<li>{esc(i)}</li>" for i in items)


def failure_html(
    details: Mapping[str, Any], *, history: History | None = None, key: Any = None
) -> str:
    """The picture plus states and final paths, as an HTML fragment."""
    parts = ['<div class="linear">']
    if details.get("op") is not None:
        parts.append(
            f"<p><strong>Cannot linearize:</strong> <code>{esc(_op_text(details['op']))}</code></p>"
        )
    if details.get("previous_ok") is not None:
        parts.append(
            f"<p>Last ok op before it: <code>{esc(_op_text(details['previous_ok']))}</code></p>"
        )
    if details.get("reason"):
        parts.append(f"<p>Reason: {esc(details['reason'])}</p>")
    if details.get("model"):
        parts.append(f"<p>Model: <code>{esc(details['model'])}</code></p>")
    parts.append(f'<div class="svgwrap">{linear_svg(details, history=history, key=key)}</div>')
    configs = [c for c in _list(details.get("configs")) if isinstance(c, Mapping)]
    if configs:
        parts.append(
            "<h4>States the system could have been in just before it</h4><table class='kv'>"
            "<tr><th>state</th><th>ops called but not yet linearized</th></tr>"
        )
        for c in configs[:10]:
            pend = [_op_text(p) for p in _list(c.get("pending"))]
            parts.append(
                f"<tr><td><code>{esc(c.get('state'))}</code></td>"
                f"<td><ul>{_li(pend) or '<li>none</li>'}</ul></td></tr>"
            )
        parts.append("</table>")
    paths = _list(details.get("final_paths"))
    if paths:
        parts.append("<h4>Longest linearizable prefixes (their last ops)</h4>")
        for i, path in enumerate(paths[:5]):
            steps = path.get("ops") if isinstance(path, Mapping) else path
            skipped = path.get("skipped") if isinstance(path, Mapping) else None
            if not isinstance(steps, list):
                continue
            rows = []
            for s in steps[-12:]:
                if isinstance(s, Mapping) and "op" in s:
                    rows.append(f"{_op_text(s['op'])}  \u21d2  state {s.get('state')}")
                else:
                    rows.append(_op_text(s))
            more = f" ({skipped} earlier ops not shown)" if skipped else ""
            parts.append(
                f"<details{' open' if i == 0 else ''}><summary>path {i + 1}{esc(more)}</summary>"
                f"<ol>{_li(rows)}</ol></details>"
            )
    parts.append("</div>")
    return "".join(parts)
