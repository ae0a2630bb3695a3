"""Bank checker: money is neither created nor destroyed (Jepsen ``tests.bank``).

The ``bank`` workload moves money between accounts inside transactions
(``f="transfer"``, value ``{"from": a, "to": b, "amount": n}``) and reads
all balances at once (``f="read"``, the ok completion's value a map of
account -> balance; a list of ``[account, balance]`` pairs works too).
Under snapshot isolation or anything stronger, every read sees a
consistent snapshot, so:

- the balances of every ok read sum to the total (``wrong-total``),
- no balance is negative unless ``negative_balances_ok=True``
  (``negative-value``),
- no balance is missing (``nil-balance``), and, when ``accounts`` is
  given, no read shows an account outside it (``unexpected-account``).

The total is ``total=`` when given, else the test's ``spec["total"]`` /
``spec["total_amount"]``, else the sum of the first ok read (reported as
``total_inferred``).  Valid iff there is no error; no ok read at all is
``"unknown"``.  Details: ``reads_count``, ``error_count``, ``error_types``
(count per type), ``errors`` (at most 100, each with the read op),
``first_error``.

By example::

    >>> bank(total=100)
    bank(total=100, negative_balances_ok=False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jepsy.checkers._support import LIMIT, hashable, is_number, jsonable, op_json
from jepsy.checkers.core import Result

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History


def _balances(v: Any) -> dict[Any, Any] | None:
    if isinstance(v, Mapping):
        return {hashable(k): x for k, x in v.items()}
    if isinstance(v, Sequence) and not isinstance(v, str):
        out: dict[Any, Any] = {}
        for pair in v:
            if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
                return None
            out[hashable(pair[0])] = pair[1]
        return out
    return None


def _same_account(a: Any, accounts: frozenset[Any]) -> bool:
    return a in accounts or str(a) in {str(x) for x in accounts}


@dataclass(frozen=True)
class Bank:
    """Every ok read sums to the total, without negative balances."""

    total: float | None = None
    negative_balances_ok: bool = False
    accounts: frozenset[Any] | None = None
    read_f: str = "read"

    def _total(self, test: Test) -> float | None:
        if self.total is not None:
            return self.total
        spec = getattr(test, "spec", None) or {}
        for k in ("total", "total_amount", "total-amount"):
            if is_number(spec.get(k)):
                return float(spec[k])
        return None

    def check(self, test: Test, history: History, opts: Mapping[str, Any]) -> Result:
        total = self._total(test)
        inferred = False
        reads = 0
        errors: list[dict[str, Any]] = []
        error_count = 0
        by_type: dict[str, int] = {}

        def err(kind: str, op_d: Any, **more: Any) -> None:
            nonlocal error_count
            error_count += 1
            by_type[kind] = by_type.get(kind, 0) + 1
            if len(errors) < LIMIT:
                errors.append({"type": kind, **more, "op": op_d})

        for op in history:
            if not (op.is_client and op.is_ok and op.f == self.read_f):
                continue
            reads += 1
            bal = _balances(op.value)
            if bal is None:
                err("malformed-read", op_json(op), value=jsonable(op.value))
                continue
            od = None
            nil = [a for a, x in bal.items() if x is None]
            bad = [a for a, x in bal.items() if x is not None and not is_number(x)]
            if nil or bad:
                od = op_json(op)
                err("nil-balance", od, accounts=jsonable(nil + bad))
                continue
            s = sum(float(x) for x in bal.values())
            if total is None:
                total, inferred = s, True
            if s != total:
                od = od or op_json(op)
                err("wrong-total", od, total=_num(s), expected=_num(total))
            neg = {a: x for a, x in bal.items() if x < 0}
            if neg and not self.negative_balances_ok:
                od = od or op_json(op)
                err("negative-value", od, negative=jsonable(neg))
            if self.accounts is not None:
                extra = [a for a in bal if not _same_account(a, self.accounts)]
                if extra:
                    err("unexpected-account", od or op_json(op), accounts=jsonable(extra))
        details: dict[str, Any] = {
            "reads_count": reads,
            "total": None if total is None else _num(total),
            "total_inferred": inferred,
            "error_count": error_count,
            "error_types": by_type,
            "errors": errors,
            "first_error": errors[0] if errors else None,
        }
        if reads == 0:
            return Result(valid="unknown", error="no ok read of the balances", details=details)
        return Result(valid=error_count == 0, details=details)

    def __repr__(self) -> str:
        return f"bank(total={self.total!r}, negative_balances_ok={self.negative_balances_ok!r})"


def _num(x: float) -> int | float | str:
    if not math.isfinite(x):
        return repr(float(x))
    return int(x) if float(x).is_integer() else x


def bank(
    *,
    total: float | None = None,
    negative_balances_ok: bool = False,
    accounts: Sequence[Any] | None = None,
    read_f: str = "read",
) -> Bank:
    """Checks bank reads: constant total, no negative balances (Jepsen ``bank`` test)."""
    return Bank(
        total=total,
        negative_balances_ok=negative_balances_ok,
        accounts=None if accounts is None else frozenset(hashable(a) for a in accounts),
        read_f=read_f,
    )
