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


def test_indexes_must_increase() -> None:
    ops = [
        Op(index=3, process=0, type="invoke", f="read"),
        Op(index=2, process=0, type="ok", f="read"),
    ]
    with pytest.raises(HistoryError, match="op indexes must increase; 2 follows 3"):
        History(ops, source="mem")


def test_nemesis_ops_are_not_validated_but_paired() -> None:
    h = History.from_dicts(
        [
            {"process": "nemesis", "type": "info", "f": "start", "value": None},
            {"process": "nemesis", "type": "invoke", "f": "kill", "value": ["n1"]},
            {"process": "nemesis", "type": "invoke", "f": "kill", "value": ["n2"]},
            {"process": "nemesis", "type": "info", "f": "kill", "value": ["n2"]},
        ]
    )
    assert h.completion(h[2]) == h[3]
    assert h.completion(h[1]) is None
    assert h.invocation(h[0]) is None


def test_from_dict_conversions_and_errors() -> None:
    from jepsy.edn import Keyword

    op = Op.from_dict(
        {
            Keyword("process"): Keyword("nemesis"),
            Keyword("type"): Keyword("info"),
            Keyword("f"): Keyword("start"),
            Keyword("time"): 12.0,
            Keyword("node"): Keyword("n1"),
            Keyword("extra-field"): 1,
        },
        index=4,
    )
    assert (op.index, op.time, op.process, op.type, op.f, op.node) == (
        4,
        12,
        "nemesis",
        "info",
        "start",
        "n1",
    )
    assert all(type(x) is str for x in (op.process, op.type, op.f, op.node))
    assert op.extra == {"extra-field": 1}
    assert Op.from_dict({"process": 0, "type": "ok", "f": None}).f == ""
    bad = [
        ({"process": 0, "type": ["ok"], "f": "r"}, "op type must be one of"),
        ({"process": 0, "type": "ok", "f": "r", "time": float("nan")}, "op time must be"),
        ({"process": 0, "type": "ok", "f": "r", "time": True}, "op time must be"),
        ({"process": 0, "type": "ok", "f": "r", "index": False}, "op index must be an int"),
        ({"process": None, "type": "ok", "f": "r"}, "op process must be an int or a string"),
    ]
    for d, words in bad:
        with pytest.raises(HistoryError, match=words):
            Op.from_dict(d)


def test_views_keep_indexes_and_split_by_key() -> None:
    h = History.from_dicts(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": ["a", 1]},
            {"process": 1, "type": "invoke", "f": "write", "value": [["k", 2], 5]},
            {"process": 0, "type": "ok", "f": "write", "value": ["a", 1]},
            {"process": 1, "type": "ok", "f": "write", "value": [["k", 2], 5]},
            {"process": "nemesis", "type": "info", "f": "start", "value": None},
        ]
    )
    keys = h.by_key()
    assert set(keys) == {"a", ("k", 2)}
    a = keys["a"]
    assert [(op.index, op.value) for op in a] == [(0, 1), (2, 1)]
    assert a.completion(a[0]) is not None and a.completion(a[0]).index == 2  # type: ignore[union-attr]
    assert [(inv.index, c.index if c else None) for inv, c in h.pairs()] == [(0, 2), (1, 3)]
    assert len(h.to_dicts()) == 5 and h.to_dicts()[4]["process"] == "nemesis"
    assert repr(h.client_ops()) == "<History 4 ops>"


def test_ops_from_readers_are_ordinary_frozen_ops() -> None:
    import copy
    import dataclasses
    import pickle

    from jepsy.history import op_from_mapping

    op = op_from_mapping(
        {"index": 3, "time": 9, "process": 1, "type": "ok", "f": "read", "value": [1], "x": 2}
    )
    same = Op(index=3, time=9, process=1, type="ok", f="read", value=[1], extra={"x": 2})
    assert type(op) is Op and op == same and repr(op) == repr(same)
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.f = "write"  # type: ignore[misc]
    assert dataclasses.replace(op, f="w").f == "w"
    assert dataclasses.asdict(op)["extra"] == {"x": 2}
    assert pickle.loads(pickle.dumps(op)) == op
    assert copy.deepcopy(op) == op
    plain = op_from_mapping({"index": 0, "time": 1, "process": 0, "type": "invoke", "f": "r"})
    assert hash(plain) == hash(Op(index=0, time=1, process=0, type="invoke", f="r"))


def _dicts() -> list[dict[str, object]]:
    return [
        {"index": 0, "time": 5, "process": 0, "type": "invoke", "f": "write", "value": 1},
        {"index": 1, "time": 6, "process": 1, "type": "invoke", "f": "read", "node": "n2"},
        {"index": 2, "time": 7, "process": 0, "type": "ok", "f": "write", "value": 1},
        {"index": 3, "time": 8, "process": "nemesis", "type": "info", "f": "start", "x": [1]},
        {"index": 4, "time": 9, "process": 1, "type": "info", "f": "read", "error": "timeout"},
        {"index": 5, "time": 10, "process": 2, "type": "invoke", "f": "read"},
    ]


def test_columnar_history_builds_the_same_ops_on_demand() -> None:
    from jepsy.history import history_from_op_dicts

    dicts = _dicts()
    h = history_from_op_dicts(dicts, "mem")  # type: ignore[arg-type]
    eager = History.from_dicts(dicts)
    assert h is not None
    assert len(h) == 6
    assert h[3] == eager[3] and h[-1] == eager[-1]  # one op, before any are built
    assert h[3].extra == {"x": [1]} and h[1].node == "n2" and h[4].error == "timeout"
    assert list(h) == list(eager)
    assert [h.partner(i) for i in range(6)] == [2, 4, 0, -1, 1, -1]
    assert list(h.partners()) == [2, 4, 0, -1, 1, -1]
    cols = h.columns()
    assert list(cols.process) == [0, 1, 0, "nemesis", 1, 2]
    assert list(eager.columns().value) == list(cols.value)
    assert h.completion(h[0]) == eager[2]
    with pytest.raises(IndexError):
        h[6]


@pytest.mark.parametrize(
    ("i", "change"),
    [
        (0, {"process": True}),  # bool is not a process
        (0, {"process": None}),
        (1, {"type": "done"}),
        (1, {"f": 3}),
        (2, {"index": 1}),  # indexes that need renumbering
        (2, {"time": 1.5}),
        (1, {"node": 7}),
        (2, {"type": "invoke"}),  # process 0 invokes twice: not a valid history
        (4, {"f": "write"}),  # f differs from its invocation
    ],
)
def test_bulk_builder_declines_what_the_op_by_op_path_must_decide(
    i: int, change: dict[str, object]
) -> None:
    from jepsy.history import history_from_op_dicts

    dicts = _dicts()
    dicts[i] = {**dicts[i], **change}
    assert history_from_op_dicts(dicts, "mem") is None  # type: ignore[arg-type]


def test_bulk_builder_renumbers_missing_indexes_and_times() -> None:
    from jepsy.history import history_from_op_dicts

    dicts = [{k: v for k, v in d.items() if k not in ("index", "time")} for d in _dicts()]
    h = history_from_op_dicts(dicts, "mem")  # type: ignore[arg-type]
    assert h is not None
    assert [op.index for op in h] == list(range(6))
    assert {op.time for op in h} == {-1}
