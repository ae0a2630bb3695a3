"""Log file pattern: did any node log something it never should?

Some bugs show up in a database's own logs before they show up in a
history: a panic, an assertion, ``data race``, ``fsync failed``.  Like
Jepsen's ``checker/log-file-pattern``, this checker searches the node logs
the run collected at teardown (``<run dir>/nodes/<node>/...``) for a
regular expression.  Invalid if any line matches.

``filename`` limits the search to files with that name (e.g.
``"etcd.log"``), otherwise every file under ``nodes/`` is read (as UTF-8,
bad bytes replaced).  The run directory is ``opts["dir"]``; without it
the verdict is ``"unknown"``.  Details: ``count`` (matching lines),
``files_searched`` and ``matches`` (at most 100: node, file, line number,
line text cut to 500 characters).

By example::

    >>> log_file_pattern(r"panic|fatal", filename="etcd.log")
    log_file_pattern('panic|fatal', filename='etcd.log')
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT
from jepsy.checkers.core import Result
from jepsy.errors import ConfigError

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History

MAX_FILES = 10_000


@dataclass(frozen=True)
class LogFilePattern:
    """Searches collected node logs for ``pattern``; invalid on any match."""

    pattern: str
    filename: str | None = None

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        d = opts.get("dir")
        if d is None:
            return Result(valid="unknown", error="no run directory (opts['dir']) to search")
        rx = re.compile(self.pattern)
        nodes = Path(d) / "nodes"
        matches: list[dict[str, Any]] = []
        count = 0
        files = 0
        if nodes.is_dir():
            for root, dirs, names in os.walk(nodes):
                dirs.sort()
                for name in sorted(names):
                    if self.filename is not None and name != self.filename:
                        continue
                    files += 1
                    if files > MAX_FILES:
                        break
                    p = Path(root) / name
                    rel = p.relative_to(nodes)
                    node = rel.parts[0] if len(rel.parts) > 1 else ""
                    try:
                        with open(p, encoding="utf-8", errors="replace") as fh:
                            for lineno, line in enumerate(fh, 1):
                                if rx.search(line):
                                    count += 1
                                    if len(matches) < LIMIT:
                                        matches.append(
                                            {
                                                "node": node,
                                                "file": rel.as_posix(),
                                                "line_number": lineno,
                                                "line": line.rstrip("\n")[:500],
                                            }
                                        )
                    except OSError:
                        continue
        return Result(
            valid=count == 0,
            details={
                "pattern": self.pattern,
                "count": count,
                "files_searched": min(files, MAX_FILES),
                "matches": matches,
            },
        )

    def __repr__(self) -> str:
        return f"log_file_pattern({self.pattern!r}, filename={self.filename!r})"


def log_file_pattern(pattern: str, *, filename: str | None = None) -> LogFilePattern:
    """Invalid if any collected node log line matches ``pattern`` (Jepsen ``log-file-pattern``)."""
    try:
        re.compile(pattern)  # a bad pattern fails here, when the test is built
    except re.error as e:
        raise ConfigError(
            f"log_file_pattern: {pattern!r} is not a valid regular expression ({e})"
        ) from None
    return LogFilePattern(pattern=pattern, filename=filename)
