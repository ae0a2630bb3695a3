"""Checkers: pure functions from a history to a :class:`Result`.

Imported as ``jepsy.checkers``.  See :mod:`jepsy.checkers.core` for the
protocol and composition; each checker lives in its own module and its
constructor is re-exported here (loaded on first use, so ``import jepsy``
stays light)::

    >>> from jepsy.checkers import compose, linearizable, stats
    >>> c = compose({"linear": linearizable("cas-register"), "stats": stats()})
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jepsy.checkers.core import (
    Checker,
    Result,
    Validity,
    compose,
    merge_valid,
    safe_check,
    unbridled_optimism,
)

_LAZY = {
    "bank": "bank",
    "counter": "counter",
    "exceptions": "exceptions",
    "independent": "independent",
    "linearizable": "linearizable",
    "list_append": "elle",
    "log_file_pattern": "log_file_pattern",
    "perf": "perf",
    "queue": "queue",
    "rw_register": "elle",
    "set_checker": "set",
    "set_full": "set",
    "stats": "stats",
    "timeline": "timeline",
    "total_queue": "queue",
    "unique_ids": "unique_ids",
}

if TYPE_CHECKING:
    from jepsy.checkers.bank import bank
    from jepsy.checkers.counter import counter
    from jepsy.checkers.elle import list_append, rw_register
    from jepsy.checkers.exceptions import exceptions
    from jepsy.checkers.independent import independent
    from jepsy.checkers.linearizable import linearizable
    from jepsy.checkers.log_file_pattern import log_file_pattern
    from jepsy.checkers.perf import perf
    from jepsy.checkers.queue import queue, total_queue
    from jepsy.checkers.set import set_checker, set_full
    from jepsy.checkers.stats import stats
    from jepsy.checkers.timeline import timeline
    from jepsy.checkers.unique_ids import unique_ids


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'jepsy.checkers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"jepsy.checkers.{mod}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Checker",
    "Result",
    "Validity",
    "bank",
    "compose",
    "counter",
    "exceptions",
    "independent",
    "linearizable",
    "list_append",
    "log_file_pattern",
    "merge_valid",
    "perf",
    "queue",
    "rw_register",
    "safe_check",
    "set_checker",
    "set_full",
    "stats",
    "timeline",
    "total_queue",
    "unbridled_optimism",
    "unique_ids",
]
