from __future__ import annotations

import json
from typing import Any

from jepsy.checkers.queue import queue, total_queue
from jepsy.core import noop_test
from jepsy.history import History


def h(*ops: tuple[Any, ...]) -> History:
    return History.from_dicts(
        {"process": o[0], "type": o[1], "f": o[2], "value": o[3]} for o in ops
    )


def enq(p: int, v: Any, outcome: str = "ok") -> list[tuple[Any, ...]]:
    return [(p, "invoke", "enqueue", v), (p, outcome, "enqueue", v)]


def deq(p: int, v: Any) -> list[tuple[Any, ...]]:
    return [(p, "invoke", "dequeue", None), (p, "ok", "dequeue", v)]


def test_queue_valid_unordered() -> None:
    hist = h(*enq(0, 1), *enq(0, 2), *deq(1, 2), *deq(1, 1), *deq(1, None))
    r = queue().check(noop_test(), hist, {})
    assert r.valid is True
    assert r.details["dequeue_count"] == 2


def test_queue_dequeue_of_never_enqueued_or_twice_or_failed() -> None:
    hist = h(*enq(0, 1), *enq(0, 3, "fail"), *deq(1, 1), *deq(1, 1), *deq(1, 2), *deq(1, 3))
    r = queue().check(noop_test(), hist, {})
    assert r.valid is False
    assert [e["value"] for e in r.details["errors"]] == [1, 2, 3]


def test_queue_concurrent_enqueue_dequeue_ok() -> None:
    hist = h(
        (0, "invoke", "enqueue", 5),
        (1, "invoke", "dequeue", None),
        (1, "ok", "dequeue", 5),
        (0, "info", "enqueue", 5),
    )
    assert queue().check(noop_test(), hist, {}).valid is True


def test_total_queue_counts() -> None:
    hist = h(
        *enq(0, 1),
        *enq(0, 2),
        *enq(0, 3),
        (0, "invoke", "enqueue", 4),
        (0, "info", "enqueue", 4),
        *deq(1, 1),
        (1, "invoke", "drain", None),
        (1, "ok", "drain", [2, 4]),
    )
    r = total_queue().check(noop_test(), hist, {})
    d = r.details
    assert r.valid is False
    assert d["lost"] == [3]
    assert d["recovered"] == [4]
    assert d["ok_count"] == 2
    assert d["attempt_count"] == 4 and d["acknowledged_count"] == 3
    json.dumps(r.to_json())


def test_total_queue_duplicates_and_unexpected() -> None:
    hist = h(*enq(0, 1), *deq(1, 1), *deq(1, 1))
    r = total_queue().check(noop_test(), hist, {})
    assert r.valid is False
    assert r.details["duplicated"] == [{"value": 1, "count": 1}]
    assert total_queue(allow_duplicates=True).check(noop_test(), hist, {}).valid is True
    r2 = total_queue().check(noop_test(), h(*enq(0, 1), *deq(1, 1), *deq(1, "x")), {})
    assert r2.valid is False
    assert r2.details["unexpected"] == ["x"]


def test_total_queue_valid_with_repeated_values() -> None:
    hist = h(*enq(0, 1), *enq(0, 1), *deq(1, 1), *deq(1, 1))
    assert total_queue().check(noop_test(), hist, {}).valid is True
    assert repr(queue()) == "queue()"
