"""Progress while a test runs: a rich live panel on a terminal, log lines otherwise.

The runner calls ``display.update(stats)`` from its main thread about once a
second (:class:`jepsy.runner.Stats`); nothing here touches the run itself.

By example::

    with make_display(tty=False) as show:
        result = run(test, progress=show.update)
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from jepsy.runner import Stats


class Display(Protocol):
    def update(self, stats: Stats) -> None: ...

    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _rate(snap: dict[str, Any], last: tuple[float, int] | None) -> tuple[float, tuple[float, int]]:
    now = time.monotonic()
    ops = int(snap["ops"])
    if last is None:
        el = float(snap["elapsed"]) or 1.0
        return ops / el, (now, ops)
    dt = now - last[0]
    return ((ops - last[1]) / dt if dt > 0 else 0.0), (now, ops)


def _elapsed(snap: dict[str, Any]) -> str:
    lim = snap["time_limit"]
    el = f"{snap['elapsed']:.0f}s"
    return f"{el}/{lim:g}s" if lim else el


class PlainDisplay:
    """One log line per update on stderr (for pipes, CI logs)."""

    def __init__(self, *, every: float = 5.0) -> None:
        self.every = every
        self._next = 0.0
        self._last: tuple[float, int] | None = None

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, stats: Stats) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        snap = stats.snapshot()
        rate, self._last = _rate(snap, self._last)
        per_f = " ".join(
            f"{f}={c['ok']}/{c['fail']}/{c['info']}" for f, c in snap["counts"].items()
        )
        click.echo(
            f"[{snap['phase']}] {_elapsed(snap)} ops={snap['ops']} ({rate:.0f}/s) "
            f"ok/fail/info: {per_f or '-'} nemesis: {snap['nemesis']}",
            err=True,
        )


class LiveDisplay:
    """A rich live table: elapsed/limit, ops/s, ok/fail/info per f, nemesis state."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._last: tuple[float, int] | None = None

    def __enter__(self) -> LiveDisplay:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def render(self, stats: Stats) -> Table:
        snap = stats.snapshot()
        rate, self._last = _rate(snap, self._last)
        t = Table(title=f"jepsy - {snap['phase']}", expand=False)
        t.add_column("f")
        t.add_column("ok", justify="right", style="green")
        t.add_column("fail", justify="right", style="yellow")
        t.add_column("info", justify="right", style="red")
        for f, c in snap["counts"].items():
            t.add_row(f, str(c["ok"]), str(c["fail"]), str(c["info"]))
        t.caption = Text(
            f"{_elapsed(snap)}  {snap['ops']} ops  {rate:.0f} ops/s  nemesis: {snap['nemesis']}"
        )
        return t

    def update(self, stats: Stats) -> None:
        self._live.update(self.render(stats), refresh=True)


def make_display(*, tty: bool | None = None) -> LiveDisplay | PlainDisplay:
    """A live display on a terminal (stderr is a TTY), plain lines otherwise."""
    if tty is None:
        tty = sys.stderr.isatty()
    return LiveDisplay() if tty else PlainDisplay()


__all__ = ["Display", "LiveDisplay", "PlainDisplay", "make_display"]
