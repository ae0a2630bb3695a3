"""The checker constructors are reachable from jepsy.checkers and build checkers."""

from __future__ import annotations

import jepsy.checkers as c
from jepsy.checkers.core import Checker
from jepsy.core import noop_test
from jepsy.history import History


def test_every_exported_constructor_builds_a_checker() -> None:
    h = History.from_dicts(
        [{"process": 0, "type": "invoke", "f": "read"}, {"process": 0, "type": "ok", "f": "read"}]
    )
    built = {
        "bank": c.bank(total=0),
        "counter": c.counter(),
        "exceptions": c.exceptions(),
        "independent": c.independent(c.stats()),
        "linearizable": c.linearizable("register"),
        "list_append": c.list_append(),
        "log_file_pattern": c.log_file_pattern("panic"),
        "perf": c.perf(),
        "queue": c.queue(),
        "rw_register": c.rw_register(),
        "set_checker": c.set_checker(),
        "set_full": c.set_full(),
        "stats": c.stats(),
        "timeline": c.timeline(),
        "total_queue": c.total_queue(),
        "unique_ids": c.unique_ids(),
        "unbridled_optimism": c.unbridled_optimism(),
    }
    assert set(built) | {
        "Checker",
        "Result",
        "Validity",
        "compose",
        "merge_valid",
        "safe_check",
    } == set(c.__all__)
    for name, checker in built.items():
        assert isinstance(checker, Checker), name
    r = c.compose({"stats": c.stats(), "exceptions": c.exceptions()}).check(noop_test(), h, {})
    assert set(r.children) == {"stats", "exceptions"}
