from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

from jepsy.report.svg import Plot, fmt_num, nice_ticks

NS = "{http://www.w3.org/2000/svg}"


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    ticks = nice_ticks(0.013, 0.97, 6)
    assert ticks[0] >= 0.013 and ticks[-1] <= 0.97
    assert all(
        round(b - a, 9) == round(ticks[1] - ticks[0], 9) for a, b in itertools.pairwise(ticks)
    )
    assert nice_ticks(5, 5) == [5]
    assert (
        fmt_num(0) == "0"
        and fmt_num(2.5) == "2.5"
        and fmt_num(1500) == "1500"
        and fmt_num(1e7) == "1e+07"
    )


def test_plot_is_well_formed_with_series_bands_and_escaped_labels() -> None:
    p = Plot(title="<t>", x_label="x & y", y_label="ms", log_y=True, note='"n"')
    p.band(1, 2, color="#abc", label="<partition>")
    p.points("read <ok>", [(0.5, 3.0), (1.5, 300.0), (2.0, 0.0)], color="#123", marker="triangle")
    p.line("rate", [(0, 1), (1, 2)], color="#456", dash="4 2")
    svg = p.render()
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "<t>" in texts and "x & y" in texts and "read <ok>" in texts
    assert len(list(root.iter(f"{NS}polyline"))) == 1
    assert any(r.get("fill") == "#abc" for r in root.iter(f"{NS}rect"))
    # a log axis from 1 to 1000 labels each decade
    assert {"1", "10", "100", "1000"} <= set(texts)


def test_empty_plot_renders() -> None:
    ET.fromstring(Plot(title="empty").render())


def test_many_points_are_merged_where_they_overlap_and_outliers_stay() -> None:
    import random

    rng = random.Random(3)
    cloud = [(rng.uniform(0, 10), rng.uniform(1, 2)) for _ in range(10_000)]
    p = Plot(log_y=True, max_points=2_000)
    p.points("read ok", [*cloud[:5000], (5.0, 5000.0), *cloud[5000:]], color="#123")
    svg = p.render()
    root = ET.fromstring(svg)
    cys = [float(c.get("cy") or 0) for c in root.iter(f"{NS}circle")]
    assert p.drawn == len(cys) - 1 <= 2_000  # one circle is the legend's
    assert p.thinning == f"{p.drawn} of 10001 points drawn (overlapping points merged)"
    assert p.thinning in svg
    assert min(cys) < 80  # the 5 s outlier near the top is still there
    small = Plot(max_points=2_000)
    small.points("x", cloud[:100], color="#123")
    small.render()
    assert (small.drawn, small.thinning) == (100, "")
