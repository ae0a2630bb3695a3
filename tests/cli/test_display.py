"""The progress display: plain lines off a TTY, a rich table on one."""

from __future__ import annotations

import io

from click.testing import CliRunner
from rich.console import Console

from jepsy.cli.display import LiveDisplay, PlainDisplay, make_display
from jepsy.runner import Stats


def _stats() -> Stats:
    st = Stats(time_limit=10)
    st.ops = 42
    st.counts = {"read": [30, 0, 1], "write": [10, 1, 0]}
    st.nemesis = "kill {'n1': 'killed'}"
    st.phase = "main"
    return st


def test_plain_display_prints_counts_and_nemesis() -> None:
    runner = CliRunner()
    with runner.isolation() as (_, err, *_rest):
        PlainDisplay(every=0).update(_stats())
        text = err.getvalue().decode()
    assert "ops=42" in text and "read=30/0/1" in text and "write=10/1/0" in text
    assert "/10s" in text and "kill" in text


def test_live_display_renders_a_table() -> None:
    buf = io.StringIO()
    d = LiveDisplay(Console(file=buf, force_terminal=True, width=120))
    with d:
        d.update(_stats())
    out = buf.getvalue()
    for word in ("read", "write", "30", "42 ops", "nemesis: kill"):
        assert word in out, word


def test_make_display_picks_by_tty() -> None:
    assert isinstance(make_display(tty=False), PlainDisplay)
    assert isinstance(make_display(tty=True), LiveDisplay)
