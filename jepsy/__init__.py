"""jepsy: find consistency bugs in distributed systems the way Jepsen does.

The curated public API is re-exported here; everything else is reachable
from its module.  See README.md for a tour."""

from jepsy.checkers.core import Checker, Result, compose
from jepsy.client import Client
from jepsy.control import ExecResult, Remote
from jepsy.core import Test, noop_test
from jepsy.db import DB, HasLogFiles, HasPrimaries, Killable, Pausable
from jepsy.errors import (
    ClientError,
    ConfigError,
    HistoryError,
    JepsyError,
    ModelError,
    RemoteError,
    SetupError,
)
from jepsy.history import History, Op, read_history, write_history
from jepsy.nemesis import Nemesis
from jepsy.runner import RunResult, build_test, run

__version__ = "0.1.0"

__all__ = [
    "DB",
    "Checker",
    "Client",
    "ClientError",
    "ConfigError",
    "ExecResult",
    "HasLogFiles",
    "HasPrimaries",
    "History",
    "HistoryError",
    "JepsyError",
    "Killable",
    "ModelError",
    "Nemesis",
    "Op",
    "Pausable",
    "Remote",
    "RemoteError",
    "Result",
    "RunResult",
    "SetupError",
    "Test",
    "__version__",
    "build_test",
    "compose",
    "noop_test",
    "read_history",
    "run",
    "write_history",
]
