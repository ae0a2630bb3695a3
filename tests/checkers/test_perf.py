from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from jepsy.checkers.perf import nemesis_intervals, perf, quantile
from jepsy.core import noop_test
from jepsy.history import History

S = 1_000_000_000


def run_history(n: int = 200, seed: int = 1) -> History:
    """Reads and writes over ~10 s with a partition from 3 s to 6 s."""
    rng = random.Random(seed)
    ds: list[dict[str, Any]] = []
    t = 0
    for i in range(n):
        p = i % 3
        f = rng.choice(["read", "write"])
        lat = rng.randint(1, 50) * 1_000_000
        ds.append({"process": p, "type": "invoke", "f": f, "value": i, "time": t})
        typ = rng.choice(["ok", "ok", "ok", "info", "fail"])
        ds.append({"process": p, "type": typ, "f": f, "value": i, "time": t + lat})
        t += 10 * S // n
        if i == n * 3 // 10:
            ds.append({"process": "nemesis", "type": "invoke", "f": "start-partition", "time": t})
            ds.append({"process": "nemesis", "type": "info", "f": "start-partition", "time": t})
        if i == n * 6 // 10:
            ds.append({"process": "nemesis", "type": "invoke", "f": "stop-partition", "time": t})
            ds.append({"process": "nemesis", "type": "info", "f": "stop-partition", "time": t})
    return History.from_dicts(ds)


def test_quantile_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert quantile(xs, 0.5) == 50
    assert quantile(xs, 0.99) == 99
    assert quantile(xs, 1.0) == 100


def test_intervals_guessed_and_from_plot_hints() -> None:
    h = run_history()
    ivs, marks = nemesis_intervals(h)
    assert [iv.name for iv in ivs] == ["partition"]
    assert 2.9 < ivs[0].start < 3.2 and 5.9 < ivs[0].stop < 6.2
    assert marks == []
    plot = {
        "nemeses": [
            {
                "name": "net",
                "start": ["start-partition"],
                "stop": "stop-partition",
                "color": "#123456",
            }
        ]
    }
    ivs2, _ = nemesis_intervals(h, plot)
    assert [(iv.name, iv.color) for iv in ivs2] == [("net", "#123456")]
    short = {
        "partition": {
            "label": "split",
            "start": "start-partition",
            "stop": "stop-partition",
            "color": "#aabbcc",
        }
    }
    assert nemesis_intervals(h, short)[0][0].name == "split"


def test_unclosed_interval_and_jepsen_double_info_events() -> None:
    h = History.from_dicts(
        [
            {"process": "nemesis", "type": "info", "f": "kill", "time": 1 * S},
            {"process": "nemesis", "type": "info", "f": "kill", "time": 2 * S},
            {"process": "nemesis", "type": "info", "f": "start", "time": 3 * S},
            {"process": "nemesis", "type": "info", "f": "start", "time": 4 * S},
            {"process": "nemesis", "type": "info", "f": "kill", "time": 5 * S},
            {"process": 0, "type": "invoke", "f": "read", "time": 6 * S},
        ]
    )
    ivs, _ = nemesis_intervals(h)
    assert [(iv.start, iv.stop) for iv in ivs] == [(1.0, 3.0), (5.0, 6.0)]
    assert ivs[1].stop_f is None


def test_perf_writes_valid_svgs_with_summary(tmp_path: Path) -> None:
    h = run_history()
    test = noop_test(
        plot={
            "partition": {"start": "start-partition", "stop": "stop-partition", "color": "#E9A0A0"}
        }
    )
    r = perf().check(test, h, {"dir": tmp_path})
    assert r.valid is True
    d = r.details
    assert set(d["latency_ms"]) == {"read", "write"}
    rd = d["latency_ms"]["read"]
    assert 1 <= rd["p50"] <= rd["p95"] <= rd["p99"] <= rd["max"] <= 50
    assert d["throughput"]["ops"] == 200
    assert d["nemesis_interval_count"] == 1
    for name in ("latency-raw.svg", "rate.svg"):
        text = (tmp_path / name).read_text()
        root = ET.fromstring(text)  # well-formed XML
        assert root.tag.endswith("svg")
        assert "#E9A0A0" in text  # the partition is shaded
    assert repr(perf()) == "perf()"


def test_perf_escapes_hostile_f_and_handles_empty(tmp_path: Path) -> None:
    h = History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "<script>x</script>", "time": 0},
            {"process": 0, "type": "ok", "f": "<script>x</script>", "time": 5_000_000},
            {"process": "nemesis", "type": "info", "f": "<b>&", "time": 1},
        ]
    )
    perf().check(noop_test(), h, {"dir": tmp_path})
    text = (tmp_path / "latency-raw.svg").read_text()
    assert "<script>" not in text and "<b>" not in text
    ET.fromstring(text)
    r = perf().check(noop_test(), History([]), {"dir": tmp_path})
    assert r.valid is True
    ET.fromstring((tmp_path / "rate.svg").read_text())


def test_perf_thins_points_above_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import jepsy.checkers.perf as perf_mod

    monkeypatch.setattr(perf_mod, "MAX_POINTS", 50)
    lat_svg, _, d = perf_mod.perf_plots(run_history(400))
    assert d["throughput"]["ops"] == 400
    markers = lat_svg.count("<circle") + lat_svg.count("<path") + lat_svg.count('width="5.6"')
    assert 40 <= markers <= 70  # about 50 points plus legend markers
    assert "of 400 points drawn" in lat_svg


def test_perf_figures_say_how_the_latency_plot_was_thinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jepsy.checkers.perf as perf_mod

    h = run_history(400)
    assert perf_mod.perf_figures(h).thinning == ""  # below the limit: every point drawn
    monkeypatch.setattr(perf_mod, "MAX_POINTS", 50)
    fig = perf_mod.perf_figures(perf_mod.perf_data(h))
    drawn, _, rest = fig.thinning.partition(" ")
    assert int(drawn) <= 50 and rest.startswith("of 400 points drawn (overlapping points merged")
    assert fig.details == perf_mod.perf_plots(h)[2]
