"""``jepsy check``: every exit code and output mode, through click's CliRunner."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jepsy.cli import cli
from jepsy.history import History, write_history
from tests.conftest import need_shared_histories

VALID = [
    (0, "invoke", "write", 1),
    (0, "ok", "write", 1),
    (1, "invoke", "read", None),
    (1, "ok", "read", 1),
]
# A read of 2 that nobody wrote: not linearizable.
INVALID = [
    (0, "invoke", "write", 1),
    (0, "ok", "write", 1),
    (1, "invoke", "read", None),
    (1, "ok", "read", 2),
]
# An op the register model does not know: the verdict is unknown.
UNKNOWN = [(0, "invoke", "frob", 1), (0, "ok", "frob", 1)]


def _hist(tmp_path: Path, name: str, events: list[tuple[Any, ...]]) -> str:
    h = History.from_dicts([{"process": p, "type": t, "f": f, "value": v} for p, t, f, v in events])
    path = tmp_path / name
    write_history(h, path)
    return str(path)


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["check", *args])


def test_valid_exits_0(tmp_path: Path) -> None:
    p = _hist(tmp_path, "ok.jsonl", VALID)
    r = _run(p)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{p}: valid (2 ops, 0 pending, model cas-register, checked in ")
    assert len(r.stdout.splitlines()) == 1


def test_invalid_exits_1_and_explains(tmp_path: Path) -> None:
    p = _hist(tmp_path, "bad.edn", INVALID)
    r = _run("--model", "register", p)
    assert r.exit_code == 1, r.output
    out = r.stdout
    assert f"{p}: INVALID (2 ops" in out and "model register" in out
    assert "cannot linearize op 3 (process 1): ok read 2" in out
    assert "last ok op before it: op 1 (process 0): ok write 1" in out
    assert "the model could have been in:" in out and "state 1" in out


def test_unknown_exits_2(tmp_path: Path) -> None:
    p = _hist(tmp_path, "frob.jsonl", UNKNOWN)
    r = _run(p)
    assert r.exit_code == 2, r.output
    assert f"{p}: unknown (" in r.stdout and "frob" in r.stdout


def test_unreadable_exits_254_after_checking_the_others(tmp_path: Path) -> None:
    good = _hist(tmp_path, "ok.jsonl", VALID)
    bad = _hist(tmp_path, "bad.jsonl", INVALID)
    torn = tmp_path / "broken.jsonl"
    torn.write_text('{"process":0,"type":"invoke","f":"read"}\n{"process":0,"type":"ok",\n{}\n')
    r = _run(str(tmp_path / "missing.edn"), good, str(torn), bad)
    assert r.exit_code == 254, r.output
    # One message per unreadable file, naming file (and line), on stderr.
    assert r.stderr.splitlines() == [
        f"error: {tmp_path / 'missing.edn'}: no such file",
        f"error: {torn}:2: not valid JSON (Expecting property name enclosed in double quotes"
        " at column 27)",
    ]
    assert f"{good}: valid" in r.stdout and f"{bad}: INVALID" in r.stdout
    assert r.stdout.splitlines()[-1] == "4 files: 1 valid, 1 invalid, 0 unknown, 2 unreadable"


def test_malformed_edn_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "h.edn"
    p.write_text('[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :ok, :f "read}]\n')
    r = _run(str(p))
    assert r.exit_code == 254
    assert r.stderr == f"error: {p}:2: unterminated string (no closing '\"')\n"
    assert r.stdout == ""


def test_exit_precedence(tmp_path: Path) -> None:
    ok = _hist(tmp_path, "ok.jsonl", VALID)
    bad = _hist(tmp_path, "bad.jsonl", INVALID)
    unk = _hist(tmp_path, "unk.jsonl", UNKNOWN)
    assert _run(ok, unk).exit_code == 2
    assert _run(unk, bad, ok).exit_code == 1
    assert _run(ok, ok).exit_code == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "nope", "x.edn"], "unknown model 'nope'; known models: cas-register"),
        (["--format", "xml", "x.edn"], "'xml' is not one of"),
        (["--time-limit", "0", "x.edn"], "--time-limit"),
        (["--memory-limit", "0", "x.edn"], "--memory-limit"),
        (["--init", "{:a", "x.edn"], "neither JSON nor EDN"),
        (["--model", "mutex", "--init", "0", "x.edn"], "takes no initial value"),
        (["--model", "no_such_module_xyz:M", "x.edn"], "cannot load the model"),
        (["--model", "json:loads", "x.edn"], "cannot build the model"),
        (["--model", "json:JSONDecodeError", "x.edn"], "cannot build the model"),
        (["--model", "json:decoder", "x.edn"], "not a model"),
        ([], "Missing argument"),
    ],
)
def test_bad_arguments_exit_254(args: list[str], words: str) -> None:
    r = _run(*args)
    assert r.exit_code == 254, r.output
    assert words in r.output


def test_custom_model_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jepsy_test_models.py").write_text(
        textwrap.dedent(
            """
            class Counter:
                name = "counter"
                def init(self):
                    return 0
                def step(self, state, f, value):
                    if f == "add":
                        return True, state + value
                    return value == state, state

            class Crashy:
                name = "crashy"
                def init(self):
                    return None
                def step(self, state, f, value):
                    raise RuntimeError("boom in the model")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    h = _hist(
        tmp_path,
        "c.jsonl",
        [
            (0, "invoke", "add", 2),
            (0, "ok", "add", 2),
            (1, "invoke", "read", None),
            (1, "ok", "read", 2),
        ],
    )
    r = _run("--model", "jepsy_test_models:Counter", h)
    assert r.exit_code == 0, r.output
    assert "model counter" in r.stdout
    # A model that raises is a crash of the check: 255 with the traceback.
    r = _run("--model", "jepsy_test_models:Crashy", h)
    assert r.exit_code == 255, r.output
    assert "jepsy crashed" in r.stderr and "boom in the model" in r.stderr


def test_json_output(tmp_path: Path) -> None:
    ok = _hist(tmp_path, "ok.jsonl", VALID)
    bad = _hist(tmp_path, "bad.edn", INVALID)
    missing = str(tmp_path / "missing.jsonl")
    r = _run("--json", "--model", "register", ok, bad, missing)
    assert r.exit_code == 254
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["file"] for o in objs] == [ok, bad, missing]
    a, b, c = objs
    assert a["status"] == "valid" and a["valid"] is True and a["model"] == "register"
    assert a["op_count"] == 2 and a["events"] == 4 and a["pending_count"] == 0
    assert isinstance(a["seconds"], float) and 0 <= a["seconds"] < 10
    assert b["status"] == "invalid" and b["valid"] is False
    assert b["explanation"]["op"]["value"] == 2
    assert b["explanation"]["previous_ok"]["f"] == "write"
    assert b["explanation"]["configs"][0]["state"] == "1"
    assert b["explanation_text"][0].startswith("cannot linearize op 3")
    assert c == {
        "file": missing,
        "status": "unreadable",
        "valid": None,
        "model": "register",
        "error": f"{missing}: no such file",
    }
    assert r.stderr == ""  # the error is in the JSON, said once


def test_independent_keys(tmp_path: Path) -> None:
    events: list[tuple[Any, ...]] = []
    for key in ("a", "b", "c"):
        events += [
            (0, "invoke", "write", [key, 1]),
            (0, "ok", "write", [key, 1]),
            (1, "invoke", "read", [key, None]),
            (1, "ok", "read", [key, 2 if key == "b" else 1]),
        ]
    p = _hist(tmp_path, "indep.jsonl", events)
    r = _run("--independent", p)
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{p}: INVALID (6 ops")
    assert lines[1] == "  keys: 3 checked, 2 valid, 1 invalid, 0 unknown"
    assert lines[2].startswith("  key b: INVALID (2 ops, ")
    assert sorted(line.split(":")[0] for line in lines[3:5]) == ["  key a", "  key c"]
    assert "  first failing key: b" in lines
    r = _run("--independent", "--json", p)
    o = json.loads(r.stdout)
    assert o["failures"] == ["b"]
    assert set(o["keys"]) == {"a", "b", "c"}
    assert o["keys"]["a"]["valid"] is True and o["keys"]["a"]["op_count"] == 2
    assert o["explanation"]["key"] == "b"


def test_format_flag(tmp_path: Path) -> None:
    p = _hist(tmp_path, "h.edn", VALID)
    assert _run("--format", "edn", p).exit_code == 0
    r = _run("--format", "jsonl", p)
    assert r.exit_code == 254
    assert r.stderr.startswith(f"error: {p}:1: not valid JSON")


def test_knossos_initial_value(tmp_path: Path) -> None:
    root = need_shared_histories() / "knossos" / "cas-register"
    bad = str(root / "bad" / "bad-analysis.edn")
    good = str(root / "good" / "cas-register-bug.edn")
    r = _run("--init", "0", bad, good)
    assert r.exit_code == 1, r.output
    assert f"{bad}: INVALID" in r.stdout and f"{good}: valid" in r.stdout


def test_terminal_output_is_a_rich_table(tmp_path: Path) -> None:
    """On a real pseudo-terminal: a table, per-key table and the explanation."""
    import os
    import pty
    import select
    import subprocess
    import sys

    ok = _hist(tmp_path, "ok.jsonl", VALID)
    bad = _hist(tmp_path, "bad.jsonl", INVALID)
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="200", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jepsy", "check", "--model", "register", ok, bad],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert code == 1, out
    assert "jepsy check" in out and "│" in out  # the table's title and borders
    assert "INVALID" in out and "valid" in out
    assert "is not linearizable:" in out
    assert "cannot linearize op 3 (process 1): ok read 2" in out
    assert "2 files: 1 valid, 1 invalid, 0 unknown, 0 unreadable" in out


def test_a_run_directory_means_its_history(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _hist(run, "history.jsonl", VALID)
    r = _run(str(run))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{run}: valid (2 ops")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _run(str(empty))
    assert r.exit_code == 254
    assert r.stderr == f"error: {empty}: is a directory, not a history file\n"
