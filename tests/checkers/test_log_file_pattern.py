from __future__ import annotations

from pathlib import Path

import pytest

from jepsy.checkers.log_file_pattern import log_file_pattern
from jepsy.core import noop_test
from jepsy.errors import ConfigError
from jepsy.history import History


def test_finds_matches_in_node_logs(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "n1").mkdir(parents=True)
    (tmp_path / "nodes" / "n2" / "sub").mkdir(parents=True)
    (tmp_path / "nodes" / "n1" / "db.log").write_text("ok\npanic: boom\nfine\n")
    (tmp_path / "nodes" / "n2" / "sub" / "db.log").write_bytes(b"\xff\xfe PANIC? no\nfatal error\n")
    (tmp_path / "nodes" / "n2" / "other.txt").write_text("panic here too\n")
    r = log_file_pattern(r"panic|fatal", filename="db.log").check(
        noop_test(), History([]), {"dir": tmp_path}
    )
    assert r.valid is False
    assert r.details["count"] == 2
    assert r.details["files_searched"] == 2
    m = r.details["matches"]
    assert (m[0]["node"], m[0]["line_number"], m[0]["line"]) == ("n1", 2, "panic: boom")
    assert m[1]["file"] == "n2/sub/db.log"
    r_all = log_file_pattern("panic").check(noop_test(), History([]), {"dir": tmp_path})
    assert r_all.details["count"] == 2


def test_clean_logs_missing_dir_and_bad_pattern(tmp_path: Path) -> None:
    assert (
        log_file_pattern("panic").check(noop_test(), History([]), {"dir": tmp_path}).valid is True
    )
    assert log_file_pattern("panic").check(noop_test(), History([]), {}).valid == "unknown"
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        log_file_pattern("(unclosed")
