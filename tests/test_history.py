from __future__ import annotations

from pathlib import Path

import pytest

from jepsy.errors import HistoryError
from jepsy.history import History, Op, read_history, write_history


def _h() -> History:
    return History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": 1},
            {"process": 1, "type": "invoke", "f": "read", "value": None},
            {"process": 0, "type": "ok", "f": "write", "value": 1},
            {"process": "nemesis", "type": "info", "f": "start", "value": None},
            {"process": 1, "type": "info", "f": "read", "value": None},
            {"process": 2, "type": "invoke", "f": "read", "value": None},
        ]
    )


def test_pairs_and_lookup() -> None:
    h = _h()
    assert h.completion(h[0]) == h[2]
    assert h.invocation(h[2]) == h[0]
    assert h.completion(h[1]) is not None and h.completion(h[1]).type == "info"  # type: ignore[union-attr]
    assert h.completion(h[5]) is None
    assert [o.index for o in h.client_ops()] == [0, 1, 2, 4, 5]
    assert [o.index for o in h.nemesis_ops()] == [3]
    sub = h.client_ops()
    assert sub.completion(sub.by_index(0)) == h[2]


def test_double_invoke_is_an_error() -> None:
    with pytest.raises(HistoryError, match="process 0 invoked"):
        History.from_dicts(
            [
                {"process": 0, "type": "invoke", "f": "read"},
                {"process": 0, "type": "invoke", "f": "read"},
            ]
        )


def test_completion_without_invoke_and_f_mismatch() -> None:
    with pytest.raises(HistoryError, match="has no invocation"):
        History.from_dicts([{"process": 0, "type": "ok", "f": "read"}])
    with pytest.raises(HistoryError, match="differs"):
        History.from_dicts(
            [
                {"process": 0, "type": "invoke", "f": "read"},
                {"process": 0, "type": "ok", "f": "write"},
            ]
        )


def test_jsonl_round_trip(tmp_path: Path) -> None:
    h = _h()
    p = tmp_path / "h.jsonl"
    write_history(h, p)
    h2 = read_history(p)
    assert list(h2) == list(h)


def test_jsonl_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(
        '{"process":0,"type":"invoke","f":"read"}\n{"process":0,"type":"bogus","f":"read"}\n'
    )
    with pytest.raises(HistoryError) as ei:
        read_history(p)
    assert f"{p}:2" in str(ei.value)
    assert "bogus" in str(ei.value)


def test_op_is_frozen() -> None:
    op = Op(process=0, type="invoke", f="read")
    with pytest.raises(AttributeError):
        op.f = "write"  # type: ignore[misc]
