"""Small helpers shared by the checkers: hashable values, JSON-ready values, bounds.

Histories read from JSON carry lists where Jepsen's EDN carries sets and
vectors; checkers compare values as hashable keys (lists become tuples,
dicts sorted item tuples) and report them back as JSON-ready values
(tuples and sets become lists, sets sorted).  Detail lists are bounded so a
million-op history cannot make ``results.json`` huge.

By example::

    >>> hashable([1, [2, 3]])
    (1, (2, 3))
    >>> jsonable(frozenset({3, 1}))
    [1, 3]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from jepsy.history import Op

#: At most this many example values are listed in a checker's details.
LIMIT = 100


def hashable(v: Any) -> Any:
    """``v`` as a hashable value: lists -> tuples, dicts -> sorted item tuples."""
    if isinstance(v, list | tuple):
        return tuple(hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted(((hashable(k), hashable(x)) for k, x in v.items()), key=sort_key))
    if isinstance(v, set | frozenset):
        return frozenset(hashable(x) for x in v)
    return v


def jsonable(v: Any) -> Any:
    """``v`` as plain JSON data: tuples/sets -> lists (sets sorted), str subclasses -> str,
    infinities and NaN -> their names as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # "inf", "-inf", "nan": strict JSON has no such numbers
    if v is None or isinstance(v, bool | int | float):
        return v
    if isinstance(v, str):
        return str(v)
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, set | frozenset):
        return [jsonable(x) for x in sorted_values(v)]
    if isinstance(v, Mapping):
        return {key_str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, Decimal | Fraction):
        return jsonable(float(v))
    return repr(v)


def key_str(k: Any) -> str:
    """A JSON object key for ``k`` (strings as they are, other values as JSON text)."""
    if isinstance(k, str):
        return str(k)
    try:
        return json.dumps(jsonable(k), sort_keys=True)
    except (TypeError, ValueError):
        return repr(k)


def sort_key(v: Any) -> tuple[int, Any]:
    """A total order over mixed values: numbers, then strings, then everything by repr."""
    if isinstance(v, bool):
        return (2, repr(v))
    if isinstance(v, int | float | Decimal | Fraction):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    return (2, repr(v))


def sorted_values(vs: Iterable[Any]) -> list[Any]:
    """``vs`` sorted by :func:`sort_key` (never raises on mixed types)."""
    return sorted(vs, key=sort_key)


def examples(vs: Iterable[Any], limit: int = LIMIT) -> list[Any]:
    """At most ``limit`` of ``vs``, sorted, JSON-ready."""
    return [jsonable(v) for v in sorted_values(vs)[:limit]]


def elements(v: Any) -> list[Any] | None:
    """The elements of a collection value (list, tuple, set, dict keys), hashable.

    None reads as the empty collection; a scalar is not a collection (None)."""
    if v is None:
        return []
    if isinstance(v, list | tuple | set | frozenset):
        return [hashable(x) for x in v]
    if isinstance(v, Mapping):
        return [hashable(x) for x in v]
    return None


def op_json(op: Op | None) -> dict[str, Any] | None:
    """An op as a JSON-ready dict (None stays None)."""
    if op is None:
        return None
    out: dict[str, Any] = jsonable(op.to_dict())
    return out


def is_number(v: Any) -> bool:
    return isinstance(v, int | float | Decimal | Fraction) and not isinstance(v, bool)
