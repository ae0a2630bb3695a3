"""docs/workloads.md is generated from the declarations and must be current."""

from __future__ import annotations

from conftest import ROOT

from jepsy.docgen import render


def test_workloads_doc_is_current() -> None:
    committed = (ROOT / "docs" / "workloads.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/workloads.md is stale: run `python -m jepsy.docgen`"


def test_every_workload_and_suite_is_documented() -> None:
    text = render()
    for name in ("register", "set", "counter", "queue", "list-append"):
        assert f"### `{name}`" in text
    for name in ("memory", "etcd"):
        assert f"### `{name}`" in text
