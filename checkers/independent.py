"""Run a checker per key of an independent history (Jepsen ``independent/checker``).

Jepsen's *independent* workloads run many small tests side by side, one per
key: op values are ``[key, value]`` tuples.  :func:`independent` splits the
history by key (:meth:`History.by_key`, values unwrapped, nemesis ops left
out) and runs the wrapped checker on each sub-history.  Valid merges the
keys' verdicts (False beats unknown beats True).

Details: ``key_count``, ``failures`` (keys judged invalid, at most 100),
``unknown`` (keys judged unknown) and ``keys``: ``{key: result}`` for the
first 100 keys of each verdict (JSON object keys; a non-string key is
written as its JSON text).

By example::

    >>> from jepsy.checkers.set import set_checker
    >>> independent(set_checker())
    independent(set_checker())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT, hashable, key_str, sort_key
from jepsy.checkers.core import Checker, Result, merge_valid, safe_check
from jepsy.history import History

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op


def _by_key(history: History) -> dict[Any, History]:
    """Like :meth:`History.by_key`, but any key value works (dicts, nested lists)."""
    out: dict[Any, list[Op]] = {}
    for op in history:
        v = op.value
        if op.is_client and isinstance(v, list | tuple) and len(v) == 2:
            out.setdefault(hashable(v[0]), []).append(op.replace(value=v[1]))
    return {k: History(ops, validate=False, source=history.source) for k, ops in out.items()}


@dataclass(frozen=True)
class Independent:
    """Checks each key's sub-history with ``checker``; see the module docstring."""

    checker: Checker

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        subs = _by_key(history)
        results = {k: safe_check(self.checker, test, h, opts) for k, h in subs.items()}
        order = sorted(results, key=sort_key)
        failures = [k for k in order if results[k].valid is False]
        unknown = [k for k in order if results[k].valid == "unknown"]
        shown: dict[str, Any] = {}
        per_verdict: dict[str, int] = {}
        for k in order:
            r = results[k]
            n = per_verdict.get(str(r.valid), 0)
            if n >= LIMIT:
                continue
            per_verdict[str(r.valid)] = n + 1
            shown[key_str(k)] = r.to_json()
        return Result(
            valid=merge_valid([r.valid for r in results.values()]),
            details={
                "key_count": len(results),
                "failures": [key_str(k) for k in failures[:LIMIT]],
                "unknown": [key_str(k) for k in unknown[:LIMIT]],
                "keys": shown,
            },
        )

    def __repr__(self) -> str:
        return f"independent({self.checker!r})"


def independent(checker: Checker) -> Independent:
    """Run ``checker`` on every key of a ``[key, value]`` history separately."""
    return Independent(checker)
