"""Checkers: pure functions from a history to a :class:`Result`.

Imported as ``jepsy.checkers``.  See :mod:`jepsy.checkers.core` for the
protocol and composition; each checker lives in its own module."""

from jepsy.checkers.core import Checker, Result, Validity, compose, merge_valid, safe_check

__all__ = ["Checker", "Result", "Validity", "compose", "merge_valid", "safe_check"]
