"""docs/workloads.md is generated from the declarations and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_examples_registered_at_run_time_do_not_change_the_page() -> None:
    import sys

    before = render()
    sys.path.insert(0, str(ROOT / "examples" / "own-system"))
    try:
        import jepsy_kv  # noqa: F401  (registers the own-kv suite)
    finally:
        sys.path.remove(str(ROOT / "examples" / "own-system"))
    assert render() == before
    assert "own-kv" not in before


def test_a_variant_of_a_builtin_workload_does_not_change_the_page() -> None:
    from jepsy.plugins import load_workload_file

    before = render()
    variant = load_workload_file(ROOT / "examples" / "custom_checker.py")
    assert variant.base == "register"  # registered now, with the built-in generator
    assert render() == before
    assert "register-plus" not in before


def test_options_are_not_taken_for_an_output_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jepsy import docgen

    monkeypatch.chdir(tmp_path)
    assert docgen.main(["--help"]) == 0
    assert "usage" in capsys.readouterr().out
    assert docgen.main(["--check"]) == 2
    assert list(tmp_path.iterdir()) == []  # no file named after the option
    assert docgen.main(["out.md"]) == 0
    assert (tmp_path / "out.md").read_text().startswith("<!-- Generated")
