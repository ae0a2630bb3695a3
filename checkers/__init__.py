"""Checkers: pure functions from a history to a :class:`Result`.

Imported as ``jepsy.checkers``.  See :mod:`jepsy.checkers.core` for the
protocol and composition.  Each checker lives in a module of its own, named
like its constructor (Jepsen's ``checker/counter`` is
``jepsy.checkers.counter.counter``)::

    >>> from jepsy.checkers import compose
    >>> from jepsy.checkers.linearizable import linearizable
    >>> from jepsy.checkers.stats import stats
    >>> c = compose({"linear": linearizable("cas-register"), "stats": stats()})

Modules: ``linearizable``, ``elle`` (``list_append``, ``rw_register``),
``set`` (``set_checker``, ``set_full``), ``counter``, ``queue`` (``queue``,
``total_queue``), ``unique_ids``, ``bank``, ``stats``, ``exceptions``,
``log_file_pattern``, ``perf``, ``timeline``, ``independent``.
"""

from jepsy.checkers.core import (
    Checker,
    Result,
    Validity,
    compose,
    merge_valid,
    safe_check,
    unbridled_optimism,
)

__all__ = [
    "Checker",
    "Result",
    "Validity",
    "compose",
    "merge_valid",
    "safe_check",
    "unbridled_optimism",
]
