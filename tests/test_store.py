"""The run directory layout, crash-safe history appends and readers for past runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jepsy.errors import ConfigError
from jepsy.history import Op, read_history
from jepsy.store import check_test_name, create_run, find_run, runs, timestamp


def test_layout_and_latest_links(tmp_path: Path) -> None:
    a = create_run(tmp_path, "demo", t=1_700_000_000.123)
    b = create_run(tmp_path, "demo", t=1_700_000_000.123)  # same millisecond
    c = create_run(tmp_path, "other", t=1_700_000_001.5)
    assert a.path != b.path and b.path.name.endswith("-1")
    assert a.path.parent == tmp_path / "demo"
    assert (tmp_path / "demo" / "latest").resolve() == b.path.resolve()
    assert (tmp_path / "latest").resolve() == c.path.resolve()
    assert os.readlink(tmp_path / "latest") == f"other/{c.path.name}"  # relative: store is movable
    assert [r.path.name for r in runs(tmp_path)] == sorted([a.path.name, b.path.name, c.path.name])


def test_timestamp_format() -> None:
    ts = timestamp(1_700_000_000.5)
    assert len(ts) == len("20231114T221320.500") and ts.endswith(".500") and ts[8] == "T"


def test_history_lines_reach_the_file_as_written(tmp_path: Path) -> None:
    run = create_run(tmp_path, "t")
    w = run.open_history()
    w.write(Op(index=0, time=1, process=0, type="invoke", f="read", value=None))
    # Readable before close: nothing is buffered in user space.
    assert run.history_file.read_text().count("\n") == 1
    w.write(Op(index=1, time=2, process=0, type="ok", f="read", value=3))
    w.close()
    h = read_history(run.history_file)
    assert [op.type for op in h] == ["invoke", "ok"] and h[1].value == 3
    assert w.count == 2 and w.closed


def test_results_keep_the_previous_one(tmp_path: Path) -> None:
    run = create_run(tmp_path, "t")
    run.write_results({"valid": True})
    run.write_results({"valid": False})
    assert run.results() == {"valid": False}
    old = [
        p for p in run.path.iterdir() if p.name.startswith("results.") and p.name != "results.json"
    ]
    assert len(old) == 1 and json.loads(old[0].read_text()) == {"valid": True}


def test_find_run(tmp_path: Path) -> None:
    run = create_run(tmp_path, "demo")
    run.write_test({"name": "demo"})
    assert find_run("latest", store_dir=tmp_path).path == run.path.resolve()
    assert find_run("demo", store_dir=tmp_path).path == run.path.resolve()
    assert find_run(run.path).path == run.path.resolve()
    assert find_run("latest", store_dir=tmp_path).test() == {"name": "demo"}
    with pytest.raises(ConfigError, match="no jepsy run"):
        find_run("nope", store_dir=tmp_path)


def test_bad_names(tmp_path: Path) -> None:
    for bad in ("a/b", "", "..", "latest", "-x"):
        with pytest.raises(ConfigError):
            check_test_name(bad)
    run = create_run(tmp_path, "t")
    with pytest.raises(ConfigError):
        run.node_dir("../evil")
    assert run.node_dir("n1").is_dir()


def test_unwritable_store_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="--store"):
        create_run(blocker, "t")
