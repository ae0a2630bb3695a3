from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jepsy.checkers import compose
from jepsy.checkers.core import safe_check
from jepsy.checkers.exceptions import exceptions
from jepsy.checkers.linearizable import linearizable
from jepsy.checkers.perf import perf
from jepsy.checkers.stats import stats
from jepsy.core import noop_test
from jepsy.history import History, write_jsonl
from jepsy.report import render_report, write_report
from tests.conftest import need

EVIL = "<script>alert('x')</script>\"&<img src=x onerror=alert(1)>"
ALLOWED = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "main",
    "footer",
    "section",
    "nav",
    "div",
    "span",
    "h1",
    "h2",
    "h3",
    "h4",
    "p",
    "strong",
    "code",
    "pre",
    "table",
    "tr",
    "th",
    "td",
    "ul",
    "ol",
    "li",
    "a",
    "details",
    "summary",
    # inline SVG
    "svg",
    "rect",
    "text",
    "line",
    "polyline",
    "circle",
    "path",
    "g",
    "defs",
    "pattern",
}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Tags:
    t = Tags()
    t.feed(page)
    return t


def assert_safe(page: str) -> Tags:
    t = parse(page)
    assert t.tags <= ALLOWED, t.tags - ALLOWED
    assert not any(name.startswith("on") for name, _ in t.attrs)
    assert "<script" not in page and "<img" not in page
    return t


def hostile_history(*, evil_f: bool = True) -> History:
    ms = 1_000_000
    ds: list[dict[str, Any]] = [
        {"process": 0, "type": "invoke", "f": "write", "value": EVIL, "time": 0},
        {"process": 0, "type": "ok", "f": "write", "value": EVIL, "time": 5 * ms},
        {"process": 1, "type": "invoke", "f": "read", "value": None, "time": 6 * ms},
        {"process": 1, "type": "ok", "f": "read", "value": EVIL + "!", "time": 9 * ms},
        {"process": 2, "type": "invoke", "f": EVIL, "value": None, "time": 10 * ms},
        {"process": 2, "type": "info", "f": EVIL, "value": None, "error": EVIL, "time": 20 * ms},
        {
            "process": "nemesis",
            "type": "info",
            "f": "start-partition",
            "value": EVIL,
            "time": 21 * ms,
        },
        {
            "process": "nemesis",
            "type": "info",
            "f": "stop-partition",
            "value": None,
            "time": 30 * ms,
        },
    ]
    if not evil_f:
        ds = [d for d in ds if d["f"] != EVIL]
    return History.from_dicts(ds)


def make_run(d: Path, *, name: str = "reg", history: History | None = None) -> Path:
    h = history if history is not None else hostile_history()
    d.mkdir(parents=True, exist_ok=True)
    write_jsonl(h, d / "history.jsonl")
    test = noop_test(name=name, nodes=("n1", EVIL))
    checker = compose(
        {
            "linear": linearizable("register"),
            "perf": perf(),
            "stats": stats(),
            "exceptions": exceptions(),
        }
    )
    res = safe_check(checker, test, h, {"dir": d})
    tj = test.to_json() | {"spec": {"workload": EVIL, "db": "etcd"}}
    (d / "test.json").write_text(json.dumps(tj))
    (d / "results.json").write_text(json.dumps(res.to_json()))
    (d / "jepsy.log").write_text(f"ERROR {EVIL}\n")
    (d / "nodes" / EVIL.replace("/", "_")).mkdir(parents=True)
    (d / "nodes" / EVIL.replace("/", "_") / "db.log").write_text("x")
    return d


def test_hostile_strings_are_escaped_everywhere(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", name=EVIL)
    out = write_report(run)
    assert out == run / "report.html"
    page = out.read_text()
    t = assert_safe(page)
    text = "".join(t.text)
    assert EVIL in text  # shown as text, not markup
    assert "INVALID" in text  # stats: the hostile f never succeeded


def test_hostile_values_in_the_linearizability_picture(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", history=hostile_history(evil_f=False))
    page = write_report(run).read_text()
    t = assert_safe(page)
    text = "".join(t.text)
    assert "Cannot linearize" in text
    assert EVIL in text


def test_linear_failure_picture_present(tmp_path: Path) -> None:
    ms = 1_000_000
    h = History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": 1, "time": 0},
            {"process": 0, "type": "ok", "f": "write", "value": 1, "time": 1 * ms},
            {"process": 1, "type": "invoke", "f": "read", "value": None, "time": 2 * ms},
            {"process": 1, "type": "ok", "f": "read", "value": 2, "time": 3 * ms},
        ]
    )
    run = make_run(tmp_path / "run", history=h)
    page = write_report(run).read_text()
    assert_safe(page)
    assert 'stroke="#c62828"' in page  # the failing op is outlined in red
    assert "States the system could have been in" in page or "Reason" in page


def test_ops_are_read_only_for_linearizability_pictures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jepsy.report.html as html_mod

    reads: list[Path] = []
    real = html_mod.read_history

    def counting(p: Path) -> History:
        reads.append(p)
        return real(p)

    monkeypatch.setattr(html_mod, "read_history", counting)
    valid = make_run(
        tmp_path / "valid", history=hostile_history(evil_f=False).filter(lambda op: op.f != "read")
    )
    page = render_report(valid)
    assert reads == [] and "Cannot linearize" not in page
    assert "Performance" in page and "by f" in page
    invalid = make_run(tmp_path / "invalid", history=hostile_history(evil_f=False))
    assert "Cannot linearize" in render_report(invalid)
    assert reads == [invalid / "history.jsonl"]


def test_thinned_latency_plot_says_so_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jepsy.checkers.perf as perf_mod

    ms = 1_000_000
    ds: list[dict[str, Any]] = []
    for i in range(300):
        ds.append({"process": 0, "type": "invoke", "f": "read", "time": i * 10 * ms})
        ds.append(
            {"process": 0, "type": "ok", "f": "read", "value": i, "time": (i * 10 + i % 7) * ms}
        )
    run = make_run(tmp_path / "run", history=History.from_dicts(ds))
    assert "points drawn" not in render_report(run)
    monkeypatch.setattr(perf_mod, "MAX_POINTS", 40)
    t = assert_safe(render_report(run))
    text = "".join(t.text)
    assert "Latency plot: " in text and "of 300 points drawn (overlapping points merged" in text


def test_report_without_results_or_history(tmp_path: Path) -> None:
    page = write_report(tmp_path).read_text()
    assert_safe(page)
    assert "No results.json" in page
    assert "NOT CHECKED" in page
    assert "No history file" in page


def test_report_with_malformed_pieces(tmp_path: Path) -> None:
    (tmp_path / "test.json").write_text("{not json")
    (tmp_path / "results.json").write_text('{"valid": "unknown", "error": "budget <b>"}')
    (tmp_path / "history.jsonl").write_text('{"process": 0, "type": "invoke", "f": "r"}\nnope\n')
    page = render_report(tmp_path)
    t = assert_safe(page)
    text = "".join(t.text)
    assert "UNKNOWN" in text
    assert "test.json could not be read" in text
    assert "history.jsonl could not be read" in text
    assert "budget <b>" in text


def test_independent_keys_and_odd_details_render(tmp_path: Path) -> None:
    results = {
        "valid": False,
        "checkers": {
            "set": {
                "valid": False,
                "key_count": 2,
                "failures": ["k<1>"],
                "keys": {
                    "k<1>": {"valid": False, "lost_count": 1, "lost": [EVIL]},
                    "k2": {"valid": True, "lost_count": 0},
                },
                "weird": {"nested": [EVIL, {"a": EVIL}]},
                "errors": [{"op": {"f": EVIL}, "value": 3}],
            },
            "boom": {"valid": "unknown", "error": EVIL, "traceback": EVIL},
        },
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    page = render_report(tmp_path)
    t = assert_safe(page)
    text = "".join(t.text)
    assert "k<1>" in text and "lost count 1" in text


@pytest.mark.integration
@pytest.mark.slow
def test_chromium_renders_report(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "needs the chromium binary (installed by scripts/setup-system.sh)")
    assert chromium is not None
    run = make_run(tmp_path / "run", name="chromium-check")
    report = write_report(run)
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        base = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
        ]
        env = {**os.environ, "HOME": profile}
        dom = subprocess.run(
            [*base, "--dump-dom", report.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=True,
        ).stdout
        subprocess.run(
            [*base, "--window-size=1200,900", f"--screenshot={shot}", report.as_uri()],
            capture_output=True,
            timeout=120,
            env=env,
            check=True,
        )
    assert "chromium-check" in dom
    assert "INVALID" in dom
    assert "<svg" in dom  # the plots are rendered inline
    assert "<script" not in dom  # the hostile values stayed text after parsing
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_results = st.recursive(
    st.fixed_dictionaries(
        {"valid": st.sampled_from([True, False, "unknown"])},
        optional={
            "error": st.text(max_size=10),
            "seconds": st.floats(0, 10),
            "op": _json_values,
            "configs": _json_values,
            "final_paths": _json_values,
            "keys": st.dictionaries(st.text(max_size=4), _json_values, max_size=3),
            "by_f": _json_values,
            "latency_ms": _json_values,
            "exceptions": _json_values,
            "lost": _json_values,
            "x": _json_values,
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {
            "valid": st.sampled_from([True, False]),
            "checkers": st.dictionaries(st.text(max_size=5), inner, max_size=3),
        }
    ),
    max_leaves=4,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_results)
def test_any_results_json_renders_every_section(tmp_path: Path, results: dict[str, Any]) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results))
    page = render_report(tmp_path)
    assert "could not be drawn" not in page
    assert_safe(page)
