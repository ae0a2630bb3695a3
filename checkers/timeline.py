"""Timeline: every op as a box in its process's column (Jepsen ``checker/timeline``).

Reading a history as text hides concurrency; a timeline shows it.  This
checker writes ``timeline.html`` into ``opts["dir"]``: one column per
process (the nemesis first), time flowing down, each op a box from its
invoke to its completion coloured by outcome (ok green, fail pink, info
orange, never completed grey, nemesis purple).  Hovering a box shows the
op (function, value, result, error, node, times).  The page is one
self-contained file: inline CSS, no scripts, every value escaped.

Huge histories are bounded: only the first ``limit`` ops (5,000 by default)
are drawn, and the page says so.  Always valid; details carry ``file``,
``op_count`` and ``shown``.

By example::

    >>> timeline()
    timeline(limit=5000)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import jsonable
from jepsy.checkers.core import Result
from jepsy.report.svg import esc

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History, Op

_COL_W = 150
_PX_PER_ROW = 18

_CSS = """
body{font:13px system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}
.meta{color:#666;margin-bottom:10px}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border-radius:3px}
.tl{position:relative;border-top:1px solid #ccc}
.hdr{position:sticky;top:0;background:#fafafa;z-index:2;height:22px;border-bottom:1px solid #ccc}
.hdr div{position:absolute;top:3px;font-weight:600;text-align:center;overflow:hidden;white-space:nowrap}
.op{position:absolute;box-sizing:border-box;border:1px solid rgba(0,0,0,.25);border-radius:3px;
 padding:0 3px;font-size:11px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.op:hover{outline:2px solid #333;z-index:3;overflow:visible;background-clip:padding-box}
.ok{background:#b7e4b0}.fail{background:#f7c3c8}.info{background:#ffd8a0}
.pending{background:#e0e0e0}.nemesis{background:#d6c8f0}
"""


def _describe(inv: Op, comp: Op | None) -> str:
    d: dict[str, Any] = {
        "process": inv.process,
        "f": inv.f,
        "value": jsonable(inv.value),
        "type": "pending" if comp is None else comp.type,
        "invoke_index": inv.index,
        "invoke_time_s": round(inv.time / 1e9, 6),
    }
    if comp is not None:
        d["result"] = jsonable(comp.value)
        d["complete_index"] = comp.index
        d["latency_ms"] = round((comp.time - inv.time) / 1e6, 3)
        if comp.error is not None:
            d["error"] = jsonable(comp.error)
    if inv.node is not None:
        d["node"] = inv.node
    # One field a line, values compact: json.dumps(indent=...) runs the pure
    # Python encoder, several times slower than one C-encoded value at a time.
    return "{\n" + ",\n".join(f' "{k}": {_dumps(v)}' for k, v in d.items()) + "\n}"


def _dumps(v: Any) -> str:
    """Compact JSON for a value :func:`jsonable` made (anything else via ``str``)."""
    t = type(v)
    if t is int:
        return str(v)  # what json.dumps writes, without its call overhead
    if v is None:
        return "null"
    try:
        return json.dumps(v)  # the shared C encoder: no per-call set-up
    except TypeError:
        return json.dumps(v, default=str)


def _label(inv: Op, comp: Op | None) -> str:
    s = f"{inv.f} {_dumps(jsonable(inv.value))}"
    if comp is not None and comp.value != inv.value:
        s += f" \u2192 {_dumps(jsonable(comp.value))}"
    return s if len(s) <= 80 else s[:79] + "\u2026"


def render_timeline(history: History, *, limit: int = 5000, title: str = "Timeline") -> str:
    """The timeline page for ``history`` as HTML text (first ``limit`` ops)."""
    ops = history.ops[:limit]
    shown_idx = {op.index for op in ops}
    procs: list[Any] = []
    seen: set[Any] = set()
    for op in ops:
        if op.process not in seen:
            seen.add(op.process)
            procs.append(op.process)
    procs.sort(key=lambda p: (isinstance(p, int) and not isinstance(p, bool), str(p).zfill(12)))
    col = {p: i for i, p in enumerate(procs)}
    row = {op.index: i for i, op in enumerate(ops)}
    boxes: list[str] = []
    for op in ops:
        if op.type != "invoke" and history.invocation(op) is not None:
            continue  # drawn with its invocation
        inv = op
        comp = history.completion(op) if op.type == "invoke" else None
        if op.type != "invoke":  # a bare completion (e.g. a Jepsen nemesis info event)
            comp = op
        r0 = row[inv.index]
        r1 = row[comp.index] if comp is not None and comp.index in shown_idx else len(ops)
        cls: str = "pending" if comp is None else comp.type
        if not inv.is_client:
            cls = "nemesis"
        top = 24 + r0 * _PX_PER_ROW
        height = max(_PX_PER_ROW - 2, (r1 - r0) * _PX_PER_ROW + _PX_PER_ROW - 2)
        left = col[inv.process] * _COL_W + 2
        boxes.append(
            f'<div class="op {cls}" style="top:{top}px;left:{left}px;width:{_COL_W - 4}px;'
            f'height:{height}px" title="{esc(_describe(inv, comp))}">{esc(_label(inv, comp))}</div>'
        )
    header = "".join(
        f'<div style="left:{i * _COL_W}px;width:{_COL_W}px">{esc(p)}</div>'
        for i, p in enumerate(procs)
    )
    more = (
        f"showing the first {len(ops)} of {len(history)} ops"
        if len(history) > len(ops)
        else f"{len(history)} ops"
    )
    height = 30 + (len(ops) + 1) * _PX_PER_ROW
    width = max(1, len(procs)) * _COL_W
    legend = "".join(
        f'<span class="{c}">{c}</span>' for c in ("ok", "fail", "info", "pending", "nemesis")
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><div class="meta">{esc(more)}; one column per process, '
        "time flows down; hover a box for the op.</div>"
        f'<div class="legend">{legend}</div>'
        f'<div class="tl" style="height:{height}px;width:{width}px">'
        f'<div class="hdr" style="width:{width}px">{header}</div>{"".join(boxes)}</div>'
        "</body></html>\n"
    )


@dataclass(frozen=True)
class Timeline:
    """Writes ``timeline.html`` into ``opts["dir"]``; always valid."""

    limit: int = 5000

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        details: dict[str, Any] = {
            "op_count": len(history),
            "shown": min(len(history), self.limit),
        }
        d = opts.get("dir")
        if d is not None:
            out = Path(d)
            out.mkdir(parents=True, exist_ok=True)
            name = getattr(test, "name", "test")
            page = render_timeline(history, limit=self.limit, title=f"Timeline: {name}")
            (out / "timeline.html").write_text(page, encoding="utf-8")
            details["file"] = "timeline.html"
        return Result(valid=True, details=details)

    def __repr__(self) -> str:
        return f"timeline(limit={self.limit!r})"


def timeline(*, limit: int = 5000) -> Timeline:
    """An HTML timeline of ops per process (Jepsen ``checker/timeline``)."""
    return Timeline(limit=limit)
