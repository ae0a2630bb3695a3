"""``jepsy test / analyze / list`` through click's CliRunner: exit codes and the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jepsy.cli import EXIT_BAD_ARGS, cli
from jepsy.cli.run import worst_exit


def _jepsy(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def test_list_names_everything() -> None:
    code, out = _jepsy("list")
    assert code == 0, out
    for word in (
        "register",
        "set",
        "memory",
        "stale-reads",
        "lost-writes",
        "partition",
        "linearizable",
    ):
        assert word in out, word


def test_memory_register_is_valid_and_leaves_a_store(tmp_path: Path) -> None:
    code, out = _jepsy(
        "test", "--db", "memory", "--workload", "register", "--time-limit", "1",
        "--rate", "300", "--store", str(tmp_path),
    )  # fmt: skip
    assert code == 0, out
    assert "verdict: valid" in out
    run = (tmp_path / "latest").resolve()
    assert {"test.json", "history.jsonl", "results.json", "jepsy.log"} <= {
        p.name for p in run.iterdir()
    }


def test_memory_bug_exits_1(tmp_path: Path) -> None:
    code, out = _jepsy(
        "test", "--db", "memory", "--workload", "register", "--time-limit", "2",
        "--memory-bug", "stale-reads", "--seed", "1", "--store", str(tmp_path),
    )  # fmt: skip
    assert code == 1, out
    assert "INVALID" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--db", "no-such-db"],
        ["--workload", "no-such-workload"],
        ["--workload", "./missing.py"],
        ["--concurrency", "lots"],
        ["--time-limit", "soon"],
        ["--time-limit", "-1"],
        ["-o", "no-equals-sign"],
        ["--memory-bug", "typo"],
        ["--nodes", "a", "--nodes-file", "x"],
        ["--test-count", "0"],
        ["--username", "admin"],
        ["--docker-host", "tcp://x:2375"],
        ["--db", "memory", "--workload", "register", "--name", "bad/name"],
    ],
)
def test_bad_arguments_exit_254(tmp_path: Path, args: list[str]) -> None:
    code, out = _jepsy("test", "--store", str(tmp_path), "--time-limit", "1", *args)
    assert code == EXIT_BAD_ARGS, out


def test_test_count_runs_n_tests(tmp_path: Path) -> None:
    code, out = _jepsy(
        "test", "--workload", "set", "--time-limit", "0.5", "--rate", "200",
        "--test-count", "2", "--store", str(tmp_path),
    )  # fmt: skip
    assert code == 0, out
    runs = [p for p in (tmp_path / "memory-set").iterdir() if not p.is_symlink()]
    assert len(runs) == 2
    assert out.count("verdict: valid") == 2


def test_analyze_rechecks_and_keeps_old_results(tmp_path: Path) -> None:
    code, out = _jepsy(
        "test", "--workload", "set", "--time-limit", "0.5", "--rate", "200",
        "--store", str(tmp_path),
    )  # fmt: skip
    assert code == 0, out
    code, out = _jepsy("analyze", "latest", "--store", str(tmp_path))
    assert code == 0, out
    run = (tmp_path / "latest").resolve()
    assert len(list(run.glob("results.*.json"))) == 1  # the previous results kept
    # an invalid history is invalid on re-check too
    h = run / "history.jsonl"
    ops = [json.loads(ln) for ln in h.read_text().splitlines()]
    for op in ops:
        if op["f"] == "read" and op["type"] == "ok":
            op["value"] = []  # the final read lost every acknowledged add
    h.write_text("".join(json.dumps(op) + "\n" for op in ops))
    code, out = _jepsy("analyze", str(run))
    assert code == 1, out


def test_analyze_missing_run_is_bad_args(tmp_path: Path) -> None:
    code, out = _jepsy("analyze", "nothing-here", "--store", str(tmp_path))
    assert code == EXIT_BAD_ARGS and "no jepsy run" in out


def test_nemesis_kill_and_pause_on_the_memory_db(tmp_path: Path) -> None:
    code, out = _jepsy(
        "test", "--workload", "register", "--time-limit", "2.5", "--rate", "300",
        "--nemesis", "kill,pause", "--nemesis-interval", "0.5", "--op-timeout", "0.5",
        "--store", str(tmp_path),
    )  # fmt: skip
    assert code == 0, out
    h = (tmp_path / "latest" / "history.jsonl").read_text()
    for f in ("kill", "pause", "start", "resume"):
        assert f'"process":"nemesis","type":"info","f":"{f}"' in h, f
    code, out = _jepsy("test", "--nemesis", "earthquake", "--store", str(tmp_path))
    assert code == EXIT_BAD_ARGS and "earthquake" in out


def test_nodes_file_and_per_node_concurrency(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes"
    nodes.write_text("# three nodes\na1\na2\na3\n")
    code, out = _jepsy(
        "test", "--workload", "register", "--time-limit", "0.5", "--rate", "500",
        "--nodes-file", str(nodes), "--concurrency", "2n", "--store", str(tmp_path / "s"),
    )  # fmt: skip
    assert code == 0, out
    run = tmp_path / "s" / "latest"
    test = json.loads((run / "test.json").read_text())
    assert test["nodes"] == ["a1", "a2", "a3"] and test["concurrency"] == 6
    ops = [json.loads(ln) for ln in (run / "history.jsonl").read_text().splitlines()]
    for op in ops:  # workers spread over nodes round-robin: thread t talks to node t % 3
        assert op["node"] == ["a1", "a2", "a3"][op["process"] % 6 % 3], op


def test_ssh_password_stays_out_of_test_json() -> None:
    from jepsy.runner import build_test

    t = build_test(
        {"db": "memory", "remote": "ssh", "remote_opts": {"user": "admin"}},
        secrets={"password": "hunter2"},
    )
    assert type(t.remote).__name__ == "SSHRemote"
    assert "hunter2" not in json.dumps(t.to_json())
    assert t.spec["remote_opts"] == {"user": "admin"}


def test_worst_exit() -> None:
    assert worst_exit([0, 2, 0]) == 2
    assert worst_exit([2, 1, 0]) == 1
    assert worst_exit([1, 255, 254]) == 255
    assert worst_exit([]) == 0
