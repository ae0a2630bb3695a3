"""examples/: the custom workload and the custom checker run end to end."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from jepsy.cli import cli
from jepsy.history import History
from jepsy.plugins import load_workload_file
from jepsy.store import find_run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _test(tmp_path: Path, example: str, *extra: str) -> int:
    res = CliRunner().invoke(
        cli,
        [
            "test", "--db", "memory", "--workload", str(EXAMPLES / example),
            "--time-limit", "1", "--store", str(tmp_path), *extra,
        ],
    )  # fmt: skip
    return res.exit_code


def test_custom_workload_runs_and_catches_lost_writes(tmp_path: Path) -> None:
    assert _test(tmp_path / "ok", "custom_workload.py", "--rate", "500") == 0
    run = find_run("latest", store_dir=tmp_path / "ok")
    results = run.results()
    assert results is not None and results["checkers"]["counter"]["valid"] is True
    assert _test(tmp_path / "bug", "custom_workload.py", "--memory-bug", "lost-writes") == 1


def test_custom_checker_is_composed_into_the_run(tmp_path: Path) -> None:
    assert _test(tmp_path, "custom_checker.py", "--rate", "500") == 0
    results = find_run("latest", store_dir=tmp_path).results()
    assert results is not None
    assert results["checkers"]["reads-were-written"]["valid"] is True


def test_custom_checker_flags_a_read_of_a_value_never_written() -> None:
    mod_wl = load_workload_file(EXAMPLES / "custom_checker.py")
    assert mod_wl.name == "register-plus" and mod_wl.base == "register"
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "custom_checker_ex", EXAMPLES / "custom_checker.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    h = History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": [1, 3]},
            {"process": 0, "type": "ok", "f": "write", "value": [1, 3]},
            {"process": 1, "type": "invoke", "f": "read", "value": [1, None]},
            {"process": 1, "type": "ok", "f": "read", "value": [1, 4]},
        ]
    )
    from jepsy.core import noop_test

    r = mod.ReadsWereWritten().check(noop_test(), h, {})
    assert r.valid is False and r.details["bad_count"] == 1
