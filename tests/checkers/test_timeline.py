from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from jepsy.checkers.timeline import render_timeline, timeline
from jepsy.core import noop_test
from jepsy.history import History


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ops: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if "op" in (a.get("class") or "").split():
            self.ops.append(a)


def hist() -> History:
    return History.from_dicts(
        [
            {
                "process": 0,
                "type": "invoke",
                "f": "write",
                "value": "<script>alert(1)</script>",
                "time": 0,
            },
            {"process": 1, "type": "invoke", "f": "read", "value": None, "time": 1},
            {
                "process": 0,
                "type": "ok",
                "f": "write",
                "value": "<script>alert(1)</script>",
                "time": 2,
            },
            {"process": 1, "type": "info", "f": "read", "value": None, "error": 'a"b&c', "time": 3},
            {"process": "nemesis", "type": "info", "f": "start-partition", "time": 4},
            {"process": 2, "type": "invoke", "f": "read", "value": None, "time": 5},
        ]
    )


def test_timeline_boxes_per_op_and_escaped(tmp_path: Path) -> None:
    r = timeline().check(noop_test(name="t<i>"), hist(), {"dir": tmp_path})
    assert r.valid is True and r.details["file"] == "timeline.html"
    page = (tmp_path / "timeline.html").read_text()
    assert "<script>" not in page and "<i>" not in page
    p = Tags()
    p.feed(page)
    assert "script" not in p.tags
    classes = sorted((o["class"] or "").split()[1] for o in p.ops)
    assert classes == ["info", "nemesis", "ok", "pending"]
    titles = " ".join(o["title"] or "" for o in p.ops)
    assert "<script>alert(1)</script>" in titles  # unescaped back by the parser: shown as text
    assert 'a\\"b&c' in titles


def test_timeline_bounded() -> None:
    page = render_timeline(hist(), limit=2)
    assert "showing the first 2 of 6 ops" in page
    p = Tags()
    p.feed(page)
    assert len(p.ops) == 2
    assert repr(timeline()) == "timeline(limit=5000)"
