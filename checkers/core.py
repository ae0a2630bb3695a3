"""The checker contract and composition.

A checker is anything with ``check(test, history, opts) -> Result``.  It is
pure: it reads the history and returns a verdict, ``valid`` being ``True``,
``False`` or ``"unknown"``, plus JSON-serialisable details.  A checker never
raises on a well-formed history; :func:`safe_check` turns an exception into
``"unknown"`` with the error, so one broken checker cannot crash a run.

``opts`` carries run context: ``opts["dir"]`` (a directory the checker may
write files into, e.g. plots; absent when checking from the CLI),
``opts["time_limit"]`` (seconds), ``opts["progress"]`` (an optional
callable ``(done, total) -> None``).

By example::

    >>> from jepsy.checkers import compose
    >>> c = compose({"a": Unbridled(), "b": Unbridled()})  # doctest: +SKIP
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History

Validity: TypeAlias = bool | Literal["unknown"]


def merge_valid(values: list[Validity] | tuple[Validity, ...]) -> Validity:
    """False beats "unknown" beats True; no values at all is True."""
    if any(v is False for v in values):
        return False
    if any(v == "unknown" for v in values):
        return "unknown"
    return True


@dataclass(frozen=True, kw_only=True)
class Result:
    """A checker's verdict.

    ``valid``: True, False or "unknown".  ``details``: JSON-serialisable
    facts (counts, anomalies, explanations).  ``error``: why the verdict is
    unknown (timeout, memory budget, an exception).  ``children``: results
    of composed checkers by name.  ``seconds``: time the check took."""

    valid: Validity
    details: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    children: Mapping[str, Result] = field(default_factory=dict)
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"valid": self.valid}
        if self.error is not None:
            d["error"] = self.error
        if self.seconds is not None:
            d["seconds"] = round(self.seconds, 6)
        d.update(self.details)
        if self.children:
            d["checkers"] = {k: v.to_json() for k, v in self.children.items()}
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Result:
        details = {k: v for k, v in d.items() if k not in ("valid", "error", "seconds", "checkers")}
        children = {k: cls.from_json(v) for k, v in (d.get("checkers") or {}).items()}
        return cls(
            valid=d["valid"],
            details=details,
            error=d.get("error"),
            children=children,
            seconds=d.get("seconds"),
        )


@runtime_checkable
class Checker(Protocol):
    """Decides something about a history.

    Contract: pure (no side effects beyond files under ``opts["dir"]``),
    returns a :class:`Result`, never raises on a well-formed history; when
    it runs out of time or memory it returns ``valid="unknown"`` with a
    reason in ``error``."""

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result: ...


def safe_check(
    checker: Checker, test: Test, history: History, opts: Mapping[str, Any] | None = None
) -> Result:
    """Run ``checker``; an exception becomes ``unknown`` with the error and traceback."""
    t0 = time.perf_counter()
    try:
        r = checker.check(test, history, opts or {})
    except Exception as e:
        return Result(
            valid="unknown",
            error=f"{type(e).__name__}: {e}",
            details={"traceback": traceback.format_exc()},
            seconds=time.perf_counter() - t0,
        )
    if r.seconds is None:
        r = Result(
            valid=r.valid,
            details=r.details,
            error=r.error,
            children=r.children,
            seconds=time.perf_counter() - t0,
        )
    return r


@dataclass(frozen=True)
class Compose:
    """Runs several named checkers; valid merges theirs (False > unknown > True)."""

    checkers: Mapping[str, Checker]

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        children = {}
        for name, c in self.checkers.items():
            sub = dict(opts)
            if "dir" in opts and opts["dir"] is not None:
                sub["dir"] = opts["dir"]
            children[name] = safe_check(c, test, history, sub)
        return Result(
            valid=merge_valid([r.valid for r in children.values()]),
            children=children,
        )

    def __repr__(self) -> str:
        return f"compose({dict(self.checkers)!r})"


def compose(checkers: Mapping[str, Checker]) -> Compose:
    """Combine named checkers into one."""
    return Compose(dict(checkers))


@dataclass(frozen=True)
class UnbridledOptimism:
    """Always valid (Jepsen's ``unbridled-optimism``); the no-op checker."""

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        return Result(valid=True)

    def __repr__(self) -> str:
        return "unbridled_optimism()"


def unbridled_optimism() -> UnbridledOptimism:
    return UnbridledOptimism()
