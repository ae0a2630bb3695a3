"""A tiny, dependency-free SVG plotter for the report and the perf checker.

Reports must open offline and stay small, so plots are hand-made inline SVG
rather than a plotting library: scatter points, step lines, shaded
intervals, axes with "nice" ticks, an optional log-scale y axis and a
legend.  Every text that reaches the SVG is escaped here.

By example::

    >>> p = Plot(title="latency", x_label="time (s)", y_label="ms", log_y=True)
    >>> p.points("read ok", [(0.5, 3.0), (1.0, 12.0)], color="#1f77b4")
    >>> p.render().startswith("<svg")
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Colours for series, chosen to stay distinguishable (Tableau 10).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def esc(s: object) -> str:
    """``str(s)`` escaped for HTML/SVG text and attribute values."""
    return html.escape(str(s), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            step = m * mag
            break
    start = math.ceil(lo / step) * step
    out: list[float] = []
    v = start
    for _ in range(100):
        if v > hi + step * 1e-9:
            break
        out.append(round(v, 10))
        v += step
    return out


def fmt_num(v: float) -> str:
    """Short label for a tick value."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 or a < 1e-3:
        return f"{v:.0e}"
    if a >= 100 or v == int(v):
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.3f}".rstrip("0").rstrip(".")


@dataclass
class _Series:
    label: str
    pts: Sequence[tuple[float, float]]
    color: str
    kind: str  # "points" | "line"
    marker: str = "circle"
    dash: str = ""


@dataclass
class _Band:
    x0: float
    x1: float
    color: str
    label: str
    title: str


@dataclass
class Plot:
    """One chart; add series and bands, then :meth:`render` to SVG text."""

    title: str = ""
    x_label: str = ""
    y_label: str = ""
    log_y: bool = False
    width: int = 900
    height: int = 340
    x_range: tuple[float, float] | None = None
    note: str = ""
    #: Draw at most about this many scatter points (None: all of them); see :meth:`render`.
    max_points: int | None = None
    #: After :meth:`render`: scatter points drawn, and how they were thinned ("" when not).
    drawn: int = field(default=0, init=False)
    thinning: str = field(default="", init=False)
    _series: list[_Series] = field(default_factory=list)
    _bands: list[_Band] = field(default_factory=list)

    def points(
        self,
        label: str,
        pts: Sequence[tuple[float, float]],
        *,
        color: str,
        marker: str = "circle",
    ) -> None:
        """A scatter series; ``marker`` is ``circle``, ``triangle`` or ``square``."""
        self._series.append(_Series(label, pts, color, "points", marker))

    def line(
        self, label: str, pts: Sequence[tuple[float, float]], *, color: str, dash: str = ""
    ) -> None:
        """A polyline series (points in x order); ``dash`` an SVG dash array like ``"4 3"``."""
        self._series.append(_Series(label, pts, color, "line", dash=dash))

    def band(self, x0: float, x1: float, *, color: str, label: str, title: str = "") -> None:
        """A shaded vertical interval (e.g. a network partition)."""
        self._bands.append(_Band(x0, x1, color, label, title or label))

    def render(self) -> str:
        """The chart as SVG text.

        With ``max_points`` set and more scatter points than that, points
        are thinned where it cannot be seen: each series keeps one point per
        pixel cell (cells growing from 1 px until the total fits), so
        outliers and the shape of every cloud survive; only if that is not
        enough are the survivors thinned evenly.  :attr:`drawn` and
        :attr:`thinning` say what happened, and the note on the chart too."""
        left, right, top, bottom = 64, 170, 34, 44
        w, h = self.width, self.height
        pw, ph = w - left - right, h - top - bottom
        if self.x_range is not None:
            x0, x1 = self.x_range
        else:
            xs = [x for s in self._series for x, _ in s.pts]
            x0 = min([*xs, *(b.x0 for b in self._bands)], default=0.0)
            x1 = max([*xs, *(b.x1 for b in self._bands)], default=1.0)
        if self.log_y:
            ys = [y for s in self._series for _, y in s.pts if y > 0]
        else:
            ys = [y for s in self._series for _, y in s.pts]
        x0 = min(x0, 0.0) if x0 >= 0 else x0
        if x1 <= x0:
            x1 = x0 + 1.0
        if self.log_y:
            lo = min(ys, default=1.0)
            hi = max(ys, default=10.0)
            ly0 = math.floor(math.log10(lo)) if lo > 0 else 0
            ly1 = math.ceil(math.log10(hi)) if hi > 0 else 1
            if ly1 <= ly0:
                ly1 = ly0 + 1
            y0, y1 = float(ly0), float(ly1)
        else:
            y0 = min(0.0, min(ys, default=0.0))
            y1 = max(ys, default=1.0)
            if y1 <= y0:
                y1 = y0 + 1.0
            y1 *= 1.05

        def sx(x: float) -> float:
            return left + (x - x0) / (x1 - x0) * pw

        def sy(y: float) -> float:
            if self.log_y:
                y = math.log10(y) if y > 0 else y0
            return top + ph - (y - y0) / (y1 - y0) * ph

        scatter = self._scatter(
            (pw / (x1 - x0), left - x0 * pw / (x1 - x0)),
            (-ph / (y1 - y0), top + ph + y0 * ph / (y1 - y0), y0),
        )
        note = self.note
        if self.thinning:
            note = f"{note}; {self.thinning}" if note else self.thinning

        o: list[str] = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
            f'width="{w}" height="{h}" role="img" aria-label="{esc(self.title)}" '
            'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" '
            'font-size="11">',
            f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/>',
        ]
        if self.title:
            o.append(
                f'<text x="{left}" y="20" font-size="14" font-weight="600" fill="#222">'
                f"{esc(self.title)}</text>"
            )
        if note:
            o.append(
                f'<text x="{left + pw}" y="20" text-anchor="end" fill="#777">{esc(note)}</text>'
            )
        # Bands first, under everything.
        for b in self._bands:
            bx0, bx1 = sx(max(b.x0, x0)), sx(min(b.x1, x1))
            o.append(
                f'<rect x="{bx0:.1f}" y="{top}" width="{max(1.0, bx1 - bx0):.1f}" height="{ph}" '
                f'fill="{esc(b.color)}" fill-opacity="0.35"><title>{esc(b.title)}</title></rect>'
            )
        # Grid and ticks.
        yt = [10.0**e for e in range(int(y0), int(y1) + 1)] if self.log_y else nice_ticks(y0, y1)
        for t in yt:
            yy = sy(t)
            o.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
            )
            o.append(
                f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#555">'
                f"{esc(fmt_num(t))}</text>"
            )
        for t in nice_ticks(x0, x1, 8):
            xx = sx(t)
            o.append(
                f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#999"/>'
            )
            o.append(
                f'<text x="{xx:.1f}" y="{top + ph + 16}" text-anchor="middle" fill="#555">'
                f"{esc(fmt_num(t))}</text>"
            )
        o.append(
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>'
        )
        o.append(
            f'<text x="{left + pw / 2:.0f}" y="{h - 8}" text-anchor="middle" fill="#333">'
            f"{esc(self.x_label)}</text>"
        )
        o.append(
            f'<text transform="translate(14 {top + ph / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle" fill="#333">{esc(self.y_label)}</text>'
        )
        # Series.
        pixels = iter(scatter)
        for s in self._series:
            if s.kind == "line":
                if s.pts:
                    d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.pts)
                    o.append(
                        f'<polyline points="{d}" fill="none" stroke="{esc(s.color)}" '
                        f'stroke-width="1.6" stroke-dasharray="{esc(s.dash)}"/>'
                    )
                continue
            o.append(f'<g fill="{esc(s.color)}" fill-opacity="0.7">')
            pts = next(pixels)
            if pts:
                o.append(_markers(s.marker, pts))
            o.append("</g>")
        # Legend: series, then distinct band labels.
        ly = top + 4
        lx = left + pw + 14
        seen: set[tuple[str, str]] = set()
        for s in self._series:
            ly += 16
            if s.kind == "line":
                o.append(
                    f'<line x1="{lx}" x2="{lx + 14}" y1="{ly - 4}" y2="{ly - 4}" '
                    f'stroke="{esc(s.color)}" stroke-width="2" stroke-dasharray="{esc(s.dash)}"/>'
                )
            else:
                o.append(f'<g fill="{esc(s.color)}">{_marker(s.marker, lx + 7, ly - 4)}</g>')
            o.append(f'<text x="{lx + 20}" y="{ly}" fill="#333">{esc(_short(s.label))}</text>')
        for b in self._bands:
            if (b.label, b.color) in seen:
                continue
            seen.add((b.label, b.color))
            ly += 16
            o.append(
                f'<rect x="{lx}" y="{ly - 10}" width="14" height="10" fill="{esc(b.color)}" '
                'fill-opacity="0.5"/>'
            )
            o.append(f'<text x="{lx + 20}" y="{ly}" fill="#333">{esc(_short(b.label))}</text>')
        o.append("</svg>")
        return "\n".join(o)

    def _scatter(
        self, ax: tuple[float, float], ay: tuple[float, float, float]
    ) -> list[list[tuple[float, float]]]:
        """Pixel positions of each points series (x = kx*x + bx, y likewise),
        thinned to about ``max_points`` as :meth:`render` describes."""
        kx, bx = ax
        ky, by, y0 = ay
        log10 = math.log10
        out: list[list[tuple[float, float]]] = []
        for s in self._series:
            if s.kind != "points":
                continue
            if self.log_y:
                out.append([(kx * x + bx, ky * (log10(y) if y > 0 else y0) + by) for x, y in s.pts])
            else:
                out.append([(kx * x + bx, ky * y + by) for x, y in s.pts])
        total = sum(map(len, out))
        self.drawn, self.thinning = total, ""
        budget = self.max_points
        if budget is None or total <= budget:
            return out
        budget = max(1, budget)
        cell = 1.0
        for _ in range(8):  # each round merges the survivors of the last, in bigger cells
            out = [_merge(pts, cell) for pts in out]
            drawn = sum(map(len, out))
            if drawn <= budget:
                break
            cell *= max(1.5, drawn / budget)
        how = "overlapping points merged"
        if drawn > budget:
            keep = budget / drawn
            out = [_thin(pts, max(1, int(len(pts) * keep))) for pts in out]
            drawn = sum(map(len, out))
            how += ", then thinned evenly"
        self.drawn = drawn
        self.thinning = f"{drawn} of {total} points drawn ({how})"
        return out


def _merge(pts: list[tuple[float, float]], cell: float) -> list[tuple[float, float]]:
    """One point of ``pts`` per ``cell`` x ``cell`` pixel square."""
    inv = 1.0 / cell
    # An int key per cell (rows of 2**20 cells) hashes twice as fast as a tuple.
    keys = [(int(x * inv) << 20) + int(y * inv) for x, y in pts]
    return list(dict(zip(keys, pts, strict=True)).values())


def _thin(pts: list[tuple[float, float]], keep: int) -> list[tuple[float, float]]:
    """``keep`` points of ``pts``, evenly spaced in order."""
    if len(pts) <= keep:
        return pts
    step = len(pts) / keep
    return [pts[int(i * step)] for i in range(keep)]


def _markers(kind: str, pts: list[tuple[float, float]]) -> str:
    """Scatter markers at pixel positions, one per line."""
    if kind == "triangle":
        return "\n".join(f'<path d="M{x:.1f} {y - 3.5:.1f}l3.5 6h-7z"/>' for x, y in pts)
    if kind == "square":
        return "\n".join(
            f'<rect x="{x - 2.8:.1f}" y="{y - 2.8:.1f}" width="5.6" height="5.6"/>' for x, y in pts
        )
    return "\n".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6"/>' for x, y in pts)


def _short(s: str, n: int = 24) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def _marker(kind: str, x: float, y: float) -> str:
    if kind == "triangle":
        return f'<path d="M{x:.1f} {y - 3.5:.1f}l3.5 6h-7z"/>'
    if kind == "square":
        return f'<rect x="{x - 2.8:.1f}" y="{y - 2.8:.1f}" width="5.6" height="5.6"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6"/>'
