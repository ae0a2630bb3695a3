"""Helpers for the end-to-end tests: build a test from a spec (as the CLI
does), run it on a cluster of our own (name prefix ``jd``, subnets
10.93.x.0/24), and summarise the result."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jepsy.control import Remote
from jepsy.control.local import LocalRemote
from jepsy.history import History, read_jsonl
from jepsy.runner import RunResult, build_test, run
from tests.remotes import assert_clean


def run_spec(
    spec: Mapping[str, Any], remote: Remote, store: Path, **replace: Any
) -> tuple[RunResult, History]:
    """Build the test for ``spec`` (on ``remote``), run it, read its history back."""
    test = build_test({**spec, "store": str(store)}).replace(remote=remote, **replace)
    result = run(test, handle_signals=False)
    assert result.error is None, f"the run crashed: {result.error}"
    if isinstance(remote, LocalRemote):
        assert_clean("local", remote.cluster)  # the runner tore everything down
    history = read_jsonl(result.run_dir.path / "history.jsonl")
    return result, history


def counts(history: History) -> dict[str, int]:
    """Completed client ops by type, e.g. {"ok": 2000, "fail": 30, "info": 12}."""
    return dict(Counter(op.type for op in history if op.is_client and not op.is_invoke))


def nemesis_fs(history: History) -> set[str]:
    return {op.f for op in history if not op.is_client}


def results_json(result: RunResult) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((result.run_dir.path / "results.json").read_text())
    return data
