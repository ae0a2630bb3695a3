"""Exceptions checker: which errors did clients see, and how often?

Collects the ``error`` of every client ``fail`` and ``info`` completion,
grouped by the error value (its JSON text) with a count, the completion
types seen and one example op (Jepsen's ``checker/unhandled-exceptions``,
extended to definite failures).  Always valid: errors are information, the
other checkers judge what they mean.  At most 100 distinct errors are
listed, most frequent first.

By example::

    >>> exceptions()
    exceptions()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT, jsonable, op_json
from jepsy.checkers.core import Result

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History


@dataclass(frozen=True)
class Exceptions:
    """Distinct client errors with counts and an example; always valid."""

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        groups: dict[str, dict[str, Any]] = {}
        total = 0
        for op in history:
            if not op.is_client or op.type not in ("fail", "info") or op.error is None:
                continue
            total += 1
            key = json.dumps(jsonable(op.error), sort_keys=True)
            g = groups.get(key)
            if g is None:
                g = groups[key] = {
                    "error": jsonable(op.error),
                    "count": 0,
                    "types": {},
                    "fs": {},
                    "example": op_json(op),
                }
            g["count"] += 1
            g["types"][op.type] = g["types"].get(op.type, 0) + 1
            g["fs"][str(op.f)] = g["fs"].get(str(op.f), 0) + 1
        ordered = sorted(groups.values(), key=lambda g: -g["count"])
        return Result(
            valid=True,
            details={
                "error_count": total,
                "distinct_count": len(groups),
                "exceptions": ordered[:LIMIT],
            },
        )

    def __repr__(self) -> str:
        return "exceptions()"


def exceptions() -> Exceptions:
    """Distinct errors of failed and indeterminate ops, with counts (always valid)."""
    return Exceptions()
