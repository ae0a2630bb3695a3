"""``jepsy check HISTORY...``: check history files for linearizability.

Reads each file (JSONL or Jepsen/Knossos EDN, detected by extension or
content), runs the linearizability checker against ``--model`` and prints
one verdict per file: a plain line per file when the output is not a
terminal (pipes, CI logs), a rich table and a progress display on one, one
JSON object per file and line with ``--json``.  For an invalid history it
shows the op that could not be linearized, the last ok op before it and
the states the model could have been in.

    jepsy check store/latest                 # a run directory: its history.jsonl
    jepsy check --model cas-register histories/*.edn --json
    jepsy check --independent --time-limit 30 history.edn
    jepsy check --model mypkg.models:Counter history.jsonl

Exit codes, for all files together (the same precedence as ``jepsy test
--test-count``): 254 when any file could not be read or an argument is bad
(the other files are still checked and reported), else 1 when any history
is invalid, else 2 when any verdict is unknown (time or memory budget),
else 0.  255 means jepsy itself crashed (a bug, or a custom model that
raised).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import click

from jepsy.errors import ConfigError, HistoryError, ModelError

if TYPE_CHECKING:
    from jepsy.checkers.core import Result
    from jepsy.checkers.linearizable import Linearizable, Model

Status = Literal["valid", "invalid", "unknown", "unreadable"]

MAX_KEYS_SHOWN = 20
"""Per-key lines printed for a partitioned history (failing keys first)."""
MAX_CONFIGS_SHOWN = 5
MAX_PENDING_SHOWN = 6

_EXIT = {"valid": 0, "invalid": 1, "unknown": 2, "unreadable": 254}


@dataclass
class FileVerdict:
    """What ``jepsy check`` found for one file."""

    file: str
    status: Status
    result: Result | None = None
    events: int = 0
    seconds: float | None = None
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def exit_code(verdicts: Sequence[FileVerdict]) -> int:
    """254 if any file was unreadable, else 1 if any invalid, else 2 if any unknown, else 0."""
    from jepsy.cli.run import worst_exit

    return worst_exit([_EXIT[v.status] for v in verdicts])


# -- model ---------------------------------------------------------------------


def _parse_init(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    from jepsy import edn

    try:
        return edn.loads(text)
    except HistoryError as e:
        raise click.BadParameter(
            f"{text!r} is neither JSON nor EDN ({e.message}); e.g. --init 0 or "
            '--init \'{"x": 0, "y": 0}\'',
            param_hint="--init",
        ) from None


def resolve_model(name: str, *, init: Any = None) -> Model:
    """A built-in model by name, or ``package.module:attr`` (a Model, class or factory)."""
    from jepsy.checkers.linearizable import MODELS, get_model
    from jepsy.checkers.linearizable.models import as_model

    if ":" in name:
        mod_name, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(
                f"cannot load the model {name!r}: {e}; use a built-in name "
                f"({', '.join(sorted(MODELS))}) or package.module:attribute"
            ) from None
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "step")):
            try:
                obj = obj() if init is None else obj(init)
            except Exception as e:
                raise ConfigError(
                    f"cannot build the model {name!r}: {type(e).__name__}: {e}; it must be a "
                    "Model, a class or a factory taking no argument (or the --init value)"
                ) from None
        try:
            return as_model(obj)
        except ModelError as e:
            raise ConfigError(f"{name}: {e}") from None
    if name not in MODELS:
        raise click.BadParameter(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))} "
            "(or package.module:attribute for your own)",
            param_hint="--model",
        )
    try:
        return get_model(name, init=init)
    except ModelError as e:
        raise click.BadParameter(str(e), param_hint="--init") from None


# -- checking ------------------------------------------------------------------


def check_file(
    path: str,
    checker: Linearizable,
    *,
    format: Literal["auto", "jsonl", "edn"] = "auto",
    time_limit: float | None = None,
) -> FileVerdict:
    """Read and check one history file; read errors give an ``unreadable`` verdict."""
    from jepsy.history import read_history

    target = _history_in(path)
    try:
        history = read_history(target, format=format)
    except HistoryError as e:
        return FileVerdict(file=path, status="unreadable", error=str(e))
    except OSError as e:
        return FileVerdict(file=path, status="unreadable", error=f"{path}: {e.strerror or e}")
    opts: dict[str, Any] = {}
    if time_limit is not None:
        opts["time_limit"] = time_limit
    t0 = time.perf_counter()
    result = checker.check(None, history, opts)
    seconds = time.perf_counter() - t0
    status: Status = (
        "valid" if result.valid is True else "invalid" if result.valid is False else "unknown"
    )
    return FileVerdict(
        file=path,
        status=status,
        result=result,
        events=len(history),
        seconds=seconds,
        error=result.error,
        details=result.details,
    )


def _history_in(path: str) -> str:
    """``path``, or the history file inside a run directory (``store/latest``)."""
    if os.path.isdir(path):
        for name in ("history.jsonl", "history.edn"):
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                return candidate
    return path


# -- output --------------------------------------------------------------------


def _op_text(d: Any) -> str:
    if not isinstance(d, Mapping):
        return str(d)
    value = json.dumps(d.get("value"), default=str)
    return f"op {d.get('index')} (process {d.get('process')}): {d.get('type')} {d.get('f')} {value}"


def explanation_lines(details: Mapping[str, Any]) -> list[str]:
    """Human lines explaining an invalid verdict from the checker's details."""
    lines: list[str] = []
    if "key" in details:
        lines.append(f"first failing key: {details['key']}")
    if "op" in details:
        lines.append(f"cannot linearize {_op_text(details['op'])}")
    if details.get("previous_ok"):
        lines.append(f"last ok op before it: {_op_text(details['previous_ok'])}")
    configs = details.get("configs") or []
    if configs:
        lines.append("the model could have been in:")
        for c in configs[:MAX_CONFIGS_SHOWN]:
            pending = c.get("pending") or []
            shown = ", ".join(
                f"op {p.get('index')} {p.get('f')} {json.dumps(p.get('value'), default=str)}"
                for p in pending[:MAX_PENDING_SHOWN]
            )
            more = (
                f" and {len(pending) - MAX_PENDING_SHOWN} more"
                if len(pending) > MAX_PENDING_SHOWN
                else ""
            )
            lines.append(
                f"  state {c.get('state')}"
                + (f" with pending {shown}{more}" if pending else " with nothing pending")
            )
        if len(configs) > MAX_CONFIGS_SHOWN:
            lines.append(f"  ... and {len(configs) - MAX_CONFIGS_SHOWN} more states")
    if details.get("reason"):
        lines.append(f"reason: {details['reason']}")
    return lines


def _keys_summary(details: Mapping[str, Any]) -> tuple[dict[str, int], list[tuple[str, Any]]]:
    keys: Mapping[str, Any] = details.get("keys") or {}
    counts = {"valid": 0, "invalid": 0, "unknown": 0}
    for r in keys.values():
        v = r.get("valid")
        counts["valid" if v is True else "invalid" if v is False else "unknown"] += 1
    order = {False: 0, "unknown": 1, True: 2}
    ranked = sorted(
        keys.items(),
        key=lambda kv: (order.get(kv[1].get("valid"), 1), -(kv[1].get("seconds") or 0.0)),
    )
    return counts, ranked


def verdict_json(v: FileVerdict, *, model: str) -> dict[str, Any]:
    """The ``--json`` object for one file."""
    d: dict[str, Any] = {
        "file": v.file,
        "status": v.status,
        "valid": None if v.result is None else v.result.valid,
        "model": model,
    }
    if v.result is None:
        d["error"] = v.error
        return d
    det = v.details
    d["seconds"] = round(v.seconds or 0.0, 6)
    d["events"] = v.events
    d["op_count"] = det.get("op_count")
    d["pending_count"] = det.get("pending_count")
    if v.error:
        d["error"] = v.error
    if "keys" in det:
        d["keys"] = {
            k: {
                "valid": r.get("valid"),
                "op_count": r.get("op_count"),
                "seconds": round(r.get("seconds") or 0.0, 6),
            }
            for k, r in det["keys"].items()
        }
        d["failures"] = list(det.get("failures") or [])
    if v.status == "invalid":
        d["explanation"] = {
            k: det[k] for k in ("key", "op", "previous_ok", "configs", "reason") if k in det
        }
        d["explanation_text"] = explanation_lines(det)
    return d


def plain_lines(v: FileVerdict) -> list[str]:
    """Log-friendly lines for one file (the first is the verdict line)."""
    if v.result is None:
        return [f"{v.file}: unreadable: {v.error}"]
    det = v.details
    word = {"valid": "valid", "invalid": "INVALID", "unknown": "unknown"}[v.status]
    head = (
        f"{v.file}: {word} ({det.get('op_count', 0)} ops, {det.get('pending_count', 0)} pending,"
        f" model {det.get('model', '?')}, checked in {v.seconds or 0.0:.3f} s)"
    )
    if v.status == "unknown" and v.error:
        head += f": {v.error}"
    lines = [head]
    if "keys" in det:
        counts, ranked = _keys_summary(det)
        lines.append(
            f"  keys: {len(ranked)} checked, {counts['valid']} valid, "
            f"{counts['invalid']} invalid, {counts['unknown']} unknown"
        )
        for k, r in ranked[:MAX_KEYS_SHOWN]:
            vk = r.get("valid")
            w = "valid" if vk is True else "INVALID" if vk is False else "unknown"
            lines.append(
                f"  key {k}: {w} ({r.get('op_count', 0)} ops, {r.get('seconds') or 0.0:.3f} s)"
                + (f": {r['error']}" if r.get("error") else "")
            )
        if len(ranked) > MAX_KEYS_SHOWN:
            lines.append(
                f"  ... and {len(ranked) - MAX_KEYS_SHOWN} more keys (all shown with --json)"
            )
    if v.status == "invalid":
        lines.extend("  " + line for line in explanation_lines(det))
    return lines


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar over files on stderr (a no-op when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield progress, progress.add_task("checking", total=total)


def _rich_report(verdicts: Sequence[FileVerdict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    style = {"valid": "green", "invalid": "bold red", "unknown": "yellow", "unreadable": "red"}
    table = Table(title="jepsy check")
    table.add_column("file", overflow="fold")
    table.add_column("verdict")
    table.add_column("ops", justify="right")
    table.add_column("pending", justify="right")
    table.add_column("keys (ok/bad/?)", justify="right")
    table.add_column("check s", justify="right")
    table.add_column("note", overflow="fold")
    for v in verdicts:
        det = v.details
        keys = ""
        if "keys" in det:
            c, _ = _keys_summary(det)
            keys = f"{c['valid']}/{c['invalid']}/{c['unknown']}"
        table.add_row(
            v.file,
            f"[{style[v.status]}]{'INVALID' if v.status == 'invalid' else v.status}[/]",
            "" if v.result is None else str(det.get("op_count", 0)),
            "" if v.result is None else str(det.get("pending_count", 0)),
            keys,
            "" if v.seconds is None else f"{v.seconds:.3f}",
            v.error or "",
            end_section=False,
        )
    console.print(table)
    for v in verdicts:
        if "keys" in v.details:
            counts, ranked = _keys_summary(v.details)
            kt = Table(
                title=f"{v.file}: {len(ranked)} keys, {counts['valid']} valid, "
                f"{counts['invalid']} invalid, {counts['unknown']} unknown"
            )
            kt.add_column("key")
            kt.add_column("verdict")
            kt.add_column("ops", justify="right")
            kt.add_column("check s", justify="right")
            for k, r in ranked[:MAX_KEYS_SHOWN]:
                vk = r.get("valid")
                st = "valid" if vk is True else "invalid" if vk is False else "unknown"
                kt.add_row(
                    k,
                    f"[{style[st]}]{'INVALID' if vk is False else st}[/]",
                    str(r.get("op_count", 0)),
                    f"{r.get('seconds') or 0.0:.3f}",
                )
            if len(ranked) > MAX_KEYS_SHOWN:
                kt.caption = f"{len(ranked) - MAX_KEYS_SHOWN} more keys; --json lists all"
            console.print(kt)
        if v.status == "invalid":
            console.print(f"[bold red]{v.file}[/] is not linearizable:")
            for line in explanation_lines(v.details):
                console.print("  " + line, markup=False, highlight=False)
    console.print(summary_line(verdicts), markup=False, highlight=False)


def summary_line(verdicts: Sequence[FileVerdict]) -> str:
    """``N files: a valid, b invalid, c unknown, d unreadable``."""
    counts = {s: 0 for s in ("valid", "invalid", "unknown", "unreadable")}
    for v in verdicts:
        counts[v.status] += 1
    n = len(verdicts)
    return f"{n} file{'s' if n != 1 else ''}: " + ", ".join(f"{c} {s}" for s, c in counts.items())


@click.command("check")
@click.argument("histories", nargs=-1, required=True, metavar="HISTORY...")
@click.option(
    "--model",
    "-m",
    default="cas-register",
    show_default=True,
    help="Model: register, cas-register, multi-register, mutex, set, fifo-queue, "
    "unordered-queue, kv; or package.module:attribute for your own.",
)
@click.option(
    "--init", "init", default=None, help="Initial value of a register model (JSON or EDN)."
)
@click.option(
    "--independent", is_flag=True, help="Split [key value] ops by key and check each key alone."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "edn"]),
    default="auto",
    show_default=True,
    help="History format; auto detects by extension, then content.",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds per file before the verdict is unknown.",
)
@click.option(
    "--memory-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Megabytes the search may use before the verdict is unknown.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file and line.")
def check(
    histories: tuple[str, ...],
    model: str,
    init: str | None,
    independent: bool,
    fmt: Literal["auto", "jsonl", "edn"],
    time_limit: float | None,
    memory_limit: int | None,
    as_json: bool,
) -> int:
    """Check HISTORY files (JSONL or Jepsen EDN, or run directories) for linearizability.

    Exit, over all files: 254 if a file was unreadable or an argument bad
    (the other files are still checked), else 1 if any history is invalid,
    else 2 if any verdict is unknown, else 0; 255 if jepsy crashed."""
    from jepsy.checkers.linearizable import linearizable

    m = resolve_model(model, init=_parse_init(init))
    checker = linearizable(
        m, independent=independent, time_limit=time_limit, memory_limit_mb=memory_limit
    )
    tty = sys.stdout.isatty() and not as_json
    verdicts: list[FileVerdict] = []
    with _progress(tty, len(histories)) as prog:
        for path in histories:
            if prog is not None:
                prog[0].update(prog[1], description=f"checking {path}")
            v = check_file(path, checker, format=fmt, time_limit=time_limit)
            verdicts.append(v)
            if prog is not None:
                prog[0].advance(prog[1])
            if as_json:
                click.echo(json.dumps(verdict_json(v, model=m.name), default=str))
            elif v.status == "unreadable":
                # One message, naming file:line, on stderr (and in the table on a TTY).
                click.echo(f"error: {v.error}", err=True)
            elif not tty:
                for line in plain_lines(v):
                    click.echo(line)
    if tty:
        _rich_report(verdicts)
    elif not as_json and len(verdicts) > 1:
        click.echo(summary_line(verdicts))
    return exit_code(verdicts)
