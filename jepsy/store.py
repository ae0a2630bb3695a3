"""The store: one directory per run, written as the run happens.

Layout (see ``docs/results.md``)::

    store/
      latest -> <test-name>/<timestamp>          newest run of any test
      <test-name>/
        latest -> <timestamp>                    newest run of this test
        20261122T170102.345/
          test.json        the test (spec, seed ...): enough to rebuild the run
          history.jsonl    one op per line, written and flushed as each op happens
          results.json     the checkers' verdict (written at the end)
          jepsy.log        the run's log
          nodes/<node>/    DB logs collected at teardown
          report.html      when the report module is installed

Crash safety: every history line reaches the kernel (``os.write`` on an
``O_APPEND`` descriptor) before anything acts on it: the runner writes the
lines it recorded under its lock in one ``os.write`` before it lets go of the
lock or hands an op to a worker, so a run killed with SIGKILL leaves every
op recorded until then, and every op a client was asked to do has its invoke
on disk; a torn last line is skipped by :func:`jepsy.history.read_history`.
(No fsync: surviving a power loss is not promised.)

By example::

    >>> import tempfile
    >>> run = create_run(tempfile.mkdtemp(), "demo")
    >>> run.path.name == run.path.resolve().name
    True
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jepsy.errors import ConfigError, HistoryError
from jepsy.history import History, Op, op_to_json, read_history

TEST_FILE = "test.json"
HISTORY_FILE = "history.jsonl"
RESULTS_FILE = "results.json"
LOG_FILE = "jepsy.log"
NODES_DIR = "nodes"
LATEST = "latest"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_TS_RE = re.compile(r"^\d{8}T\d{6}\.\d{3}(-\d+)?$")


def check_test_name(name: str) -> str:
    """``name`` if it is usable as a directory name, else :class:`ConfigError`."""
    if not _NAME_RE.match(name) or name == LATEST:
        raise ConfigError(
            f"test name {name!r} cannot name a store directory; "
            "use letters, digits, '.', '_', '+' and '-'"
        )
    return name


def timestamp(t: float | None = None) -> str:
    """``YYYYmmddTHHMMSS.mmm`` in local time."""
    t = time.time() if t is None else t
    ms = int((t - int(t)) * 1000)
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(t)) + f".{ms:03d}"


def _relink(link: Path, target: str) -> None:
    """Atomically point symlink ``link`` at ``target``."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, link)


class HistoryWriter:
    """Appends ops to ``history.jsonl``: one ``os.write`` per op or batch of lines, no
    user-space buffer.

    Not thread-safe by itself; the runner calls it under its lock so that
    line order is index order."""

    __slots__ = ("_fd", "count", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.count = 0

    def write(self, op: Op) -> None:
        fd = self._fd
        if fd is None:
            raise HistoryError("history writer is closed", source=str(self.path))
        os.write(fd, (op_to_json(op) + "\n").encode())
        self.count += 1

    def write_line(self, line: str) -> None:
        """Write one pre-encoded JSON line (without its newline)."""
        fd = self._fd
        if fd is None:
            raise HistoryError("history writer is closed", source=str(self.path))
        os.write(fd, (line + "\n").encode())
        self.count += 1

    def write_lines(self, lines: list[str]) -> None:
        """Write pre-encoded JSON lines (without newlines) with one ``os.write``
        (more only if the kernel takes part of the bytes), in order."""
        fd = self._fd
        if fd is None:
            raise HistoryError("history writer is closed", source=str(self.path))
        data = ("\n".join(lines) + "\n").encode()
        n = os.write(fd, data)
        while n < len(data):  # a short write (rare on regular files): write the rest
            data = data[n:]
            n = os.write(fd, data)
        self.count += len(lines)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None


@dataclass(frozen=True)
class RunDir:
    """One run's directory, for writing (by the runner) or reading (analyze)."""

    path: Path

    @property
    def test_file(self) -> Path:
        return self.path / TEST_FILE

    @property
    def history_file(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    def node_dir(self, node: str) -> Path:
        """``nodes/<node>/``, created."""
        if "/" in node or node in ("", ".", ".."):
            raise ConfigError(f"node name {node!r} cannot name a directory")
        d = self.path / NODES_DIR / node
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- writing ----------------------------------------------------------
    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as indented JSON to ``name`` (atomically, via a temp file)."""
        p = self.path / name
        tmp = p.with_name(f".{name}.tmp")
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n", encoding="utf-8")
        os.replace(tmp, p)
        return p

    def write_test(self, test_json: Mapping[str, Any]) -> Path:
        return self.write_json(TEST_FILE, dict(test_json))

    def write_results(self, results: Mapping[str, Any], *, keep_old: bool = True) -> Path:
        """Write ``results.json``; an existing one is kept as ``results.<mtime>.json``."""
        p = self.results_file
        if keep_old and p.exists():
            old = p.with_name(f"results.{timestamp(p.stat().st_mtime)}.json")
            n = 1
            while old.exists():
                old = p.with_name(f"results.{timestamp(p.stat().st_mtime)}-{n}.json")
                n += 1
            os.replace(p, old)
        return self.write_json(RESULTS_FILE, dict(results))

    def open_history(self) -> HistoryWriter:
        return HistoryWriter(self.history_file)

    def log_handler(self, level: int = logging.INFO) -> logging.FileHandler:
        """A handler writing ``jepsy.log``; the caller attaches and removes it."""
        h = logging.FileHandler(self.log_file, encoding="utf-8")
        h.setLevel(level)
        h.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
        )
        return h

    # -- reading ----------------------------------------------------------
    def test(self) -> dict[str, Any]:
        """The parsed ``test.json``."""
        return _read_json(self.test_file)

    def results(self) -> dict[str, Any] | None:
        """The parsed ``results.json``, or None if the run was never checked."""
        if not self.results_file.exists():
            return None
        return _read_json(self.results_file)

    def history(self) -> History:
        """The recorded history (a torn last line from a killed run is skipped)."""
        return read_history(self.history_file, format="jsonl")

    def iter_history(self) -> Iterator[Op]:
        from jepsy.history import iter_jsonl

        return iter_jsonl(self.history_file)


def _json_default(o: Any) -> Any:
    if isinstance(o, frozenset | set | tuple):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def _read_json(p: Path) -> dict[str, Any]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p} does not exist; is {p.parent} a jepsy run directory?") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} should hold a JSON object")
    return data


def create_run(
    store_dir: str | os.PathLike[str], test_name: str, *, t: float | None = None
) -> RunDir:
    """Make ``<store_dir>/<test_name>/<timestamp>/`` and point both ``latest`` links at it."""
    check_test_name(test_name)
    root = Path(store_dir)
    test_dir = root / test_name
    try:
        test_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the store directory {str(test_dir)!r}: {e.strerror} "
            "(choose another with --store DIR)"
        ) from None
    ts = timestamp(t)
    path = test_dir / ts
    n = 1
    while True:
        try:
            path.mkdir()
            break
        except FileExistsError:
            path = test_dir / f"{ts}-{n}"
            n += 1
            if n > 1000:
                raise ConfigError(f"cannot create a run directory under {test_dir}") from None
    _relink(test_dir / LATEST, path.name)
    _relink(root / LATEST, f"{test_name}/{path.name}")
    return RunDir(path)


def find_run(
    spec: str | os.PathLike[str], *, store_dir: str | os.PathLike[str] = "store"
) -> RunDir:
    """A past run: a run directory, ``latest``, ``<test-name>`` (its latest run) or
    ``<test-name>/<timestamp>`` under ``store_dir``.  :class:`ConfigError` if none."""
    s = os.fspath(spec)
    candidates = [Path(s)]
    root = Path(store_dir)
    if not Path(s).is_absolute():
        candidates += [root / s, root / s / LATEST]
    for c in candidates:
        if (c / TEST_FILE).is_file() or (c / HISTORY_FILE).is_file():
            return RunDir(c.resolve())
    raise ConfigError(
        f"no jepsy run at {s!r} (looked in {', '.join(str(c) for c in candidates)}); "
        "give a run directory, 'latest' or a test name"
    )


def runs(store_dir: str | os.PathLike[str] = "store") -> list[RunDir]:
    """Every run under ``store_dir``, oldest first."""
    root = Path(store_dir)
    out: list[RunDir] = []
    if not root.is_dir():
        return out
    for test_dir in sorted(root.iterdir()):
        if test_dir.name == LATEST or test_dir.is_symlink() or not test_dir.is_dir():
            continue
        for run in sorted(test_dir.iterdir()):
            if run.is_dir() and not run.is_symlink() and _TS_RE.match(run.name):
                out.append(RunDir(run))
    out.sort(key=lambda r: r.path.name)
    return out


__all__ = [
    "HISTORY_FILE",
    "LOG_FILE",
    "RESULTS_FILE",
    "TEST_FILE",
    "HistoryWriter",
    "RunDir",
    "check_test_name",
    "create_run",
    "find_run",
    "runs",
    "timestamp",
]
