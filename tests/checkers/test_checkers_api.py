"""Every checker module exposes a constructor named like the module (or as
documented) that builds a Checker; jepsy.checkers itself exports the core."""

from __future__ import annotations

import importlib

import jepsy.checkers as c
from jepsy.checkers.core import Checker
from jepsy.core import noop_test
from jepsy.history import History

CONSTRUCTORS = {
    ("bank", "bank"): {"total": 0},
    ("counter", "counter"): {},
    ("elle", "list_append"): {},
    ("elle", "rw_register"): {},
    ("exceptions", "exceptions"): {},
    ("linearizable", "linearizable"): {},
    ("log_file_pattern", "log_file_pattern"): None,
    ("perf", "perf"): {},
    ("queue", "queue"): {},
    ("queue", "total_queue"): {},
    ("set", "set_checker"): {},
    ("set", "set_full"): {},
    ("stats", "stats"): {},
    ("timeline", "timeline"): {},
    ("unique_ids", "unique_ids"): {},
}


def test_every_checker_module_builds_a_checker() -> None:
    h = History.from_dicts(
        [{"process": 0, "type": "invoke", "f": "read"}, {"process": 0, "type": "ok", "f": "read"}]
    )
    for (mod, name), kwargs in CONSTRUCTORS.items():
        ctor = getattr(importlib.import_module(f"jepsy.checkers.{mod}"), name)
        checker = ctor("panic") if kwargs is None else ctor(**kwargs)
        assert isinstance(checker, Checker), (mod, name)
        r = checker.check(noop_test(), h, {})
        assert r.valid in (True, False, "unknown"), (mod, name)
    indep = importlib.import_module("jepsy.checkers.independent").independent
    stats = importlib.import_module("jepsy.checkers.stats").stats
    assert isinstance(indep(stats()), Checker)


def test_package_exports_the_core() -> None:
    assert c.__all__ == sorted(c.__all__, key=lambda s: (s[0].islower(), s))
    r = c.compose({"ok": c.unbridled_optimism()}).check(noop_test(), History([]), {})
    assert r.valid is True and set(r.children) == {"ok"}
