from __future__ import annotations

import xml.etree.ElementTree as ET

from jepsy.history import History
from jepsy.report.linear import failure_html, linear_svg

MS = 1_000_000


def test_picture_from_history_highlights_failing_and_previous_ops() -> None:
    h = History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": 1, "time": 0},
            {"process": 0, "type": "ok", "f": "write", "value": 1, "time": 1 * MS},
            {"process": 2, "type": "invoke", "f": "write", "value": 3, "time": 1 * MS + 1},
            {"process": 1, "type": "invoke", "f": "read", "value": None, "time": 2 * MS},
            {"process": 1, "type": "ok", "f": "read", "value": 2, "time": 3 * MS},
        ]
    )
    details = {
        "op": {"index": 4, "process": 1, "type": "ok", "f": "read", "value": 2, "time": 3 * MS},
        "previous_ok": {"index": 1, "process": 0, "type": "ok", "f": "write", "value": 1},
        "configs": [
            {
                "state": "1",
                "pending": [{"index": 2, "process": 2, "f": "write", "value": 3, "pending": True}],
            }
        ],
        "final_paths": [
            {"skipped": 0, "ops": [{"op": {"index": 1, "f": "write", "value": 1}, "state": "1"}]}
        ],
    }
    svg = linear_svg(details, history=h)
    root = ET.fromstring(svg)
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("cannot be linearized: op 3 process 1: read \u2192 2") for t in titles)
    assert svg.count('stroke="#c62828"') == 2  # the failing bar and its legend swatch
    assert svg.count('stroke="#1565c0"') == 2  # previous ok + legend
    assert "url(#hatch)" in svg  # the never-completed write runs to the edge
    html = failure_html(details, history=h)
    assert "States the system could have been in" in html
    assert "path 1" in html


def test_picture_without_history_and_escaping() -> None:
    details = {
        "op": {
            "index": 7,
            "process": "<p>",
            "type": "ok",
            "f": "read",
            "value": "<script>",
            "time": 5,
        },
        "configs": [{"state": "<b>", "pending": []}],
        "final_paths": [
            [{"index": 3, "process": 0, "type": "ok", "f": "write", "value": "&", "time": 1}]
        ],
    }
    svg = linear_svg(details)
    ET.fromstring(svg)
    assert "<script>" not in svg and "<p>" not in svg
    html = failure_html(details)
    assert "<b>" not in html and "&lt;b&gt;" in html
    empty = linear_svg({})
    assert "no ops to draw" in empty
