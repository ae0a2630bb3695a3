from __future__ import annotations

from typing import Any

from jepsy.checkers.unique_ids import unique_ids
from jepsy.core import noop_test
from jepsy.history import History


def gen(*results: tuple[str, Any]) -> History:
    ds: list[dict[str, Any]] = []
    for i, (typ, v) in enumerate(results):
        ds.append({"process": i, "type": "invoke", "f": "generate", "value": None})
        ds.append({"process": i, "type": typ, "f": "generate", "value": v})
    return History.from_dicts(ds)


def test_distinct_ids_valid() -> None:
    r = unique_ids().check(noop_test(), gen(("ok", 1), ("ok", 2), ("fail", 2), ("info", None)), {})
    assert r.valid is True
    assert r.details["attempted_count"] == 4
    assert r.details["acknowledged_count"] == 2
    assert r.details["range"] == [1, 2]


def test_duplicates_reported() -> None:
    r = unique_ids().check(noop_test(), gen(("ok", "a"), ("ok", "b"), ("ok", "a"), ("ok", "a")), {})
    assert r.valid is False
    assert r.details["duplicated"] == [{"value": "a", "count": 3}]
    assert repr(unique_ids()) == "unique_ids()"
