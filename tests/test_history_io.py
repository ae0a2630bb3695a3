"""Reading and writing history files: JSONL and Jepsen/Knossos EDN."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jepsy.edn import EdnError, Keyword, iter_edn_ops, write_edn_history
from jepsy.errors import HistoryError
from jepsy.history import (
    History,
    Op,
    detect_format,
    history_from_located,
    iter_jsonl,
    op_to_json,
    read_history,
    read_jsonl,
    write_history,
)
from tests.conftest import ROOT, need_shared_histories


def _ops() -> list[Op]:
    return [
        Op(index=0, time=10, process=0, type="invoke", f="write", value=1, node="n1"),
        Op(index=1, time=11, process=1, type="invoke", f="cas", value=[1, 2]),
        Op(index=2, time=12, process=0, type="ok", f="write", value=1, node="n1"),
        Op(index=3, time=13, process="nemesis", type="info", f="start-partition", value=None),
        Op(index=4, time=14, process=1, type="info", f="cas", value=[1, 2], error="timeout"),
        Op(index=5, time=15, process=6, type="invoke", f="read", value=None),
        Op(
            index=6,
            time=16,
            process=6,
            type="fail",
            f="read",
            value=None,
            error=Keyword("not-found"),
            extra={"tag": "x"},
        ),
    ]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- EDN ----------------------------------------------------------------------

KNOSSOS_STYLE = """; a Knossos-style file
[{:process 4, :type :invoke, :f :write, :value 2}
 {:process 4, :type :ok, :f :write, :value 2}
 ; comment between ops
 {:process :nemesis, :type :info, :f :start, :value nil}
 {:process 6, :type :invoke, :f :cas, :value [1 4]}
 {:process 6, :type :fail, :f :cas, :value [1 4], :error :cas-failed}]
"""

JEPSEN_03_STYLE = """#jepsen.history.Op{:index 0, :time 5, :type :invoke, :process 0, :f :read, :value nil}
#jepsen.history.Op{:index 1, :time 9, :type :ok, :process 0, :f :read, :value 3, :node "n2"}
"""


def test_edn_vector_of_maps(tmp_path: Path) -> None:
    h = read_history(_write(tmp_path, "h.edn", KNOSSOS_STYLE))
    assert len(h) == 5
    assert [op.index for op in h] == [0, 1, 2, 3, 4]
    assert h[0].f == "write" and type(h[0].f) is str and type(h[0].type) is str
    nem = h[2]
    assert nem.process == "nemesis" and type(nem.process) is str and not nem.is_client
    assert h[3].value == [1, 4]
    assert h[4].error == "cas-failed" and type(h[4].error) is Keyword
    assert h.completion(h[3]) == h[4]
    assert h.source == str(tmp_path / "h.edn")


def test_edn_list_and_stream_and_records(tmp_path: Path) -> None:
    as_list = KNOSSOS_STYLE.replace("[{", "({").replace("}]", "})")
    assert list(read_history(_write(tmp_path, "l.edn", as_list))) == list(
        read_history(_write(tmp_path, "v.edn", KNOSSOS_STYLE))
    )
    stream = KNOSSOS_STYLE.replace("[{", "{").replace("}]", "}")
    assert len(read_history(_write(tmp_path, "s.edn", stream))) == 5
    h = read_history(_write(tmp_path, "r.edn", JEPSEN_03_STYLE))
    assert [(op.index, op.time, op.type, op.value, op.node) for op in h] == [
        (0, 5, "invoke", None, None),
        (1, 9, "ok", 3, "n2"),
    ]


def test_edn_keeps_given_indexes_and_extra_fields(tmp_path: Path) -> None:
    text = "{:index 3, :type :invoke, :process 0, :f :read, :tag :t1}\n" + (
        "{:index 7, :type :ok, :process 0, :f :read, :value 1, :tag :t2}\n"
    )
    h = read_history(_write(tmp_path, "h.edn", text))
    assert [op.index for op in h] == [3, 7]
    assert h[1].extra == {"tag": "t2"}
    assert h.completion(h[0]) == h[1]


def test_edn_round_trip_keeps_keywords(tmp_path: Path) -> None:
    h = History(_ops())
    for vector in (False, True):
        p = tmp_path / f"out-{vector}.edn"
        write_edn_history(h, p, vector=vector)
        text = p.read_text()
        assert text.startswith("[{" if vector else "{:index 0, :time 10, :type :invoke")
        assert ":process :nemesis" in text and ":error :not-found" in text
        assert ':error "timeout"' in text and ":tag " in text
        h2 = read_history(p)
        assert list(h2) == list(h)
        assert type(h2[6].error) is Keyword and type(h2[4].error) is str
    write_edn_history([], tmp_path / "empty.edn", vector=True)
    assert len(read_history(tmp_path / "empty.edn")) == 0


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[{:process 0, :type :invoke, :f :read}\n 42]", 2, "element 1 is not an op map: 42"),
        ("[{:process 0, :type :invoke, :f :read}\n [1 2]]", 2, "element 1 is not an op map"),
        ("{:process 0, :f :read}", 1, "missing the field 'type'"),
        ("\n{:process 0, :type :bogus, :f :read}", 2, "got Keyword('bogus')"),
        ("{:process 1.5, :type :invoke, :f :read}", 1, "process must be an int or a string"),
        ("{:process 0, :type :invoke, :f 7}", 1, "f must be a string"),
        ("{:process 0, :type :invoke, :f :r, :time :x}", 1, "time must be a number"),
        ("{:process 0, :type :invoke, :f :r, :index 1.5}", 1, "index must be an int"),
        ("[{:process 0, :type :invoke, :f :r}\n{:process 0, :type :invoke", 2, "not closed"),
        ('[{:process 0, :type :invoke, :f :r, :node "n1}]', 1, "unterminated string"),
        ("[{:process 0, :type :invoke, :f :r}]]", 1, "closes nothing"),
        (
            "{:process 0, :type :invoke, :f :r}\n{:process 0, :type :invoke, :f :w}",
            2,
            "process 0 invoked 'w' while its 'r' (op 0) had not completed",
        ),
        ("\n\n{:process 3, :type :ok, :f :r}", 3, "completion of 'r' by process 3 has no"),
        (
            "{:process 0, :type :invoke, :f :r}\n{:process 0, :type :ok, :f :w}",
            2,
            "completion f 'w' differs from its invocation's f 'r'",
        ),
    ],
)
def test_edn_errors_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    p = _write(tmp_path, "bad.edn", text)
    with pytest.raises(HistoryError) as ei:
        read_history(p)
    e = ei.value
    assert (e.source, e.line) == (str(p), line), str(e)
    assert words in e.message
    assert str(e).startswith(f"{p}:{line}: ")


def test_edn_syntax_errors_are_edn_errors(tmp_path: Path) -> None:
    with pytest.raises(EdnError):
        read_history(_write(tmp_path, "bad.edn", "[{:a 1]"))


# -- JSONL --------------------------------------------------------------------


def test_jsonl_round_trip_and_content(tmp_path: Path) -> None:
    h = History(_ops())
    p = tmp_path / "h.jsonl"
    write_history(h, p)
    lines = p.read_text().splitlines()
    assert len(lines) == 7
    assert json.loads(lines[3]) == {
        "index": 3,
        "time": 13,
        "process": "nemesis",
        "type": "info",
        "f": "start-partition",
        "value": None,
    }
    h2 = read_history(p)
    assert list(h2) == list(h)
    assert list(iter_jsonl(p)) == list(h)


def test_jsonl_torn_last_line_is_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = History(_ops())
    p = tmp_path / "h.jsonl"
    write_history(h, p)
    full = p.read_text()
    p.write_text(full + '{"index":7,"time":17,"process":2,"ty')
    with caplog.at_level(logging.WARNING, logger="jepsy.history"):
        h2 = read_history(p)
    assert list(h2) == list(h)
    assert "torn last line" in caplog.text and ":8" in caplog.text
    # A torn line that is valid JSON but not an object is dropped too.
    p.write_text(full + "12")
    assert len(read_history(p)) == 7
    # A complete last line without its newline is kept.
    p.write_text(full.rstrip("\n"))
    assert len(read_history(p)) == 7
    # Without tolerance it is an error naming the line.
    p.write_text(full + '{"index":7,')
    with pytest.raises(HistoryError, match=r"h\.jsonl:8: not valid JSON"):
        read_jsonl(p, tolerate_torn_tail=False)


def test_jsonl_blank_lines_and_missing_indexes(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "h.jsonl",
        '\n{"process":0,"type":"invoke","f":"read"}\n  \n{"process":0,"type":"ok","f":"read","value":5}\n',
    )
    h = read_history(p)
    assert [(op.index, op.type, op.value) for op in h] == [(0, "invoke", None), (1, "ok", 5)]
    # Validation errors still name the right line with blank lines around.
    p2 = _write(
        tmp_path,
        "h2.jsonl",
        '\n{"process":0,"type":"invoke","f":"read"}\n\n{"process":0,"type":"ok","f":"write"}\n',
    )
    with pytest.raises(HistoryError) as ei:
        read_history(p2)
    assert ei.value.line == 4 and "differs" in ei.value.message


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (
            '{"process":0,"type":"invoke","f":"read"}\n{"process":0,"type":"bogus","f":"read"}\n',
            2,
            "bogus",
        ),
        ('{"process":0,"type":"invoke","f":"read"}\n{nope\n', 2, "not valid JSON"),
        ('{"process":0,"type":"invoke","f":"read"}\n[1,2]\n', 2, "expected a JSON object"),
        ('{"process":0,"type":"invoke","f":"read"} {"a":1}\n', 1, "not valid JSON (Extra data"),
        ('{"process":0,"type":"invoke"}\n', 1, "missing the field 'f'"),
        ('{"process":true,"type":"invoke","f":"r"}\n', 1, "process must be an int or a string"),
        (
            '{"process":0,"type":"invoke","f":"r"}\n{"process":0,"type":"invoke","f":"r"}\n',
            2,
            "invoked",
        ),
        ('{"process":0,"type":"ok","f":"r"}\n', 1, "has no invocation"),
        ('{"index":5,"process":0,"type":"invoke","f":"r","time":"x"}\n', 1, "time must be"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    p = _write(tmp_path, "bad.jsonl", body)
    with pytest.raises(HistoryError) as ei:
        read_history(p)
    assert (ei.value.source, ei.value.line) == (str(p), line), str(ei.value)
    assert words in ei.value.message
    assert str(ei.value).startswith(f"{p}:{line}: ")


def test_jsonl_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"process":0,"type":"invoke","f":"r"}\n{"process":0,"type":"ok","f":"\xff"}\n')
    with pytest.raises(HistoryError, match=r"bad\.jsonl:2: not UTF-8"):
        read_history(p)


# -- dispatch -----------------------------------------------------------------


def test_format_detection(tmp_path: Path) -> None:
    h = History(_ops())
    a = tmp_path / "history"
    write_history(h, a, format="edn")
    assert detect_format(a) == "edn"
    assert list(read_history(a)) == list(h)
    b = tmp_path / "history.txt"
    write_history(h, b, format="jsonl")
    assert detect_format(b) == "jsonl"
    assert list(read_history(b)) == list(h)
    c = _write(tmp_path, "c", "; comment\n\n;more\n[{:process 0, :type :invoke, :f :r}]")
    assert detect_format(c) == "edn"
    assert detect_format(tmp_path / "x.ndjson") == "jsonl"
    # An explicit format wins over the extension.
    d = tmp_path / "odd.edn"
    write_history(h, d, format="jsonl")
    assert list(read_history(d, format="jsonl")) == list(h)
    with pytest.raises(HistoryError):
        read_history(d, format="edn")


def test_read_history_file_errors(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"nope\.jsonl: no such file"):
        read_history(tmp_path / "nope.jsonl")
    with pytest.raises(HistoryError, match="is a directory"):
        read_history(tmp_path, format="jsonl")
    p = _write(tmp_path, "h.edn", "[]")
    with pytest.raises(HistoryError, match="unknown history format 'xml'"):
        read_history(p, format="xml")  # type: ignore[arg-type]
    q = tmp_path / "latin1.edn"
    q.write_bytes(b'[{:process 0, :type :invoke, :f :r, :node "\xe9"}]')
    with pytest.raises(HistoryError, match="not UTF-8"):
        read_history(q)


# -- the Knossos corpus -------------------------------------------------------


def test_every_knossos_history_reads_and_round_trips(tmp_path: Path) -> None:
    root = need_shared_histories() / "knossos"
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert len(manifest["files"]) == 122
    for n, entry in enumerate(manifest["files"]):
        h = read_history(root / entry["file"])
        assert len(h) == entry["events"], entry["file"]
        invokes = [op for op in h if op.is_client and op.is_invoke]
        assert len(invokes) == entry["operations"], entry["file"]
        pending = sum(1 for op in invokes if h.completion(op) is None)
        assert pending == entry["unmatched_invokes"], entry["file"]
        assert sum(1 for op in h if not op.is_client) == entry["nemesis_events"]
        if n % 8 == 0:  # a sample keeps this fast: the fast path agrees with the parser
            from jepsy.edn import iter_edn_ops

            text = (root / entry["file"]).read_text()
            slow = history_from_located(iter_edn_ops(text), "x", text)
            assert list(slow) == list(h), entry["file"]
        for fmt in ("edn", "jsonl") if n % 8 == 0 else ():
            out = tmp_path / f"rt.{fmt}"
            write_history(h, out)
            assert list(read_history(out)) == list(h), (entry["file"], fmt)


def test_parse_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "parse_history", ROOT / "bench" / "parse_history.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--ops", "3000", "--repeat", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in out[:2]] == [
        ["jsonl", "3000", "lines"],
        ["edn", "3000", "lines"],
    ]
    assert "operations)" in out[0]
    assert out[2].startswith("machine: sum(range(1000)) takes")


def test_edn_writer_keeps_odd_names_readable(tmp_path: Path) -> None:
    ops = [
        Op(index=0, process="client a", type="invoke", f="my op", value=None),
        Op(index=1, process="client a", type="ok", f="my op", value=1, extra={"a key": 2}),
        Op(index=2, process=0, type="invoke", f="", value=None),
    ]
    p = tmp_path / "odd.edn"
    write_history(History(ops), p)
    assert list(read_history(p)) == ops


def test_a_utf8_bom_is_ignored(tmp_path: Path) -> None:
    h = History(_ops())
    for fmt in ("jsonl", "edn"):
        plain = tmp_path / f"plain.{fmt}"
        write_history(h, plain)
        bom = tmp_path / f"bom-{fmt}"  # no extension: detected by content
        bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
        assert detect_format(bom) == fmt
        assert list(read_history(bom)) == list(h)


_json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), _json_values, st.booleans()), max_size=12),
    st.sampled_from(["", "\n", "   \n", "\r\n"]),
)
def test_jsonl_fast_and_line_readers_agree(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Any], blank: str
) -> None:
    """The one-call decoder and the line-by-line reader build the same history."""
    from jepsy.history import _iter_jsonl_located, _read_jsonl_bulk

    ops: list[Op] = []
    open_: dict[int, Op] = {}
    for p, value, fail in steps:
        inv = open_.pop(p, None)
        if inv is None:
            op = Op(index=len(ops), time=len(ops), process=p, type="invoke", f="w", value=value)
            open_[p] = op
        else:
            op = Op(
                index=len(ops),
                time=len(ops),
                process=p,
                type="fail" if fail else "ok",
                f="w",
                value=value,
            )
        ops.append(op)
    path = tmp_path_factory.mktemp("rt") / "h.jsonl"
    path.write_text("".join(op_to_json(op) + "\n" + blank for op in ops))
    fast = _read_jsonl_bulk(str(path), tolerate_torn_tail=True)
    slow = [op for _line, op in _iter_jsonl_located(str(path))]
    assert slow == ops
    if fast is not None:
        assert list(fast) == ops
    assert list(read_history(path)) == ops


def test_edn_numbers_json_cannot_hold_become_floats(tmp_path: Path) -> None:
    p = _write(tmp_path, "n.edn", "{:process 0, :type :invoke, :f :w, :value [1.5M 1/4 #{2 1}]}")
    h = read_history(p)
    out = tmp_path / "n.jsonl"
    write_history(h, out)
    assert json.loads(out.read_text())["value"] == [1.5, 0.25, [1, 2]]


@pytest.mark.parametrize("c_loads", [True, False])
def test_lines_that_only_together_make_json_are_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, c_loads: bool
) -> None:
    """Decoding the file at once must not accept what the lines alone are not."""
    import jepsy.history as hist

    if not c_loads:  # the json fallback used when orjson is not installed
        monkeypatch.setattr(hist, "_C_LOADS", False)
        monkeypatch.setattr(hist, "_loads", json.loads)
    p = _write(
        tmp_path,
        "merged.jsonl",
        '{"process":0,"type":"invoke","f":"r","value":[{"b":1}\n'
        '{"c":2}]}\n'
        '{"process":1,"type":"invoke","f":"r"}, {"process":2,"type":"invoke","f":"r"}\n',
    )
    with pytest.raises(HistoryError) as ei:
        read_history(p)
    assert ei.value.line == 1 and "not valid JSON" in ei.value.message
    good = tmp_path / "good.jsonl"
    write_history(History(_ops()), good)
    assert list(read_history(good)) == _ops()


# Knossos files the JSON path leaves to the token path: a map entry lacks its
# comma ("{:process 22  :type :invoke, ...}"), so the key guess fails.
_KNOSSOS_NOT_JSON_PATH = {"cas-register/bad/bad-analysis.edn"}


def test_every_knossos_file_reads_the_same_through_every_path() -> None:
    """The JSON path takes the Knossos files and agrees with the general parser."""
    from jepsy.edn import _fast_op_maps, _json_op_maps, _parse, iter_edn_ops
    from tests.test_edn import _as_json_path_gives, _identical

    root = need_shared_histories() / "knossos"
    manifest = json.loads((root / "MANIFEST.json").read_text())
    for entry in manifest["files"]:
        path = root / entry["file"]
        text = path.read_text(encoding="utf-8-sig")
        forms, _pos, inner = _parse(text, None)
        expected = forms[0] if inner is not None else forms
        fast = _json_op_maps(text)
        if entry["file"] in _KNOSSOS_NOT_JSON_PATH:
            assert fast is None, entry["file"]
            assert _identical(_fast_op_maps(text), expected), entry["file"]
        else:
            assert fast is not None, entry["file"]
            assert _identical(fast, _as_json_path_gives(expected)), entry["file"]
        slow = history_from_located(iter_edn_ops(text, source=str(path)), str(path), text)
        assert list(read_history(path)) == list(slow), entry["file"]


def test_big_integers_stay_exact(tmp_path: Path) -> None:
    """orjson reads integers beyond 64 bits as floats: both readers must not."""
    values = [2**64, -(2**63) - 1, 2**63 - 1, 10**30, [1, 2**70]]
    ops = [
        Op(index=i, time=i, process=i, type="invoke", f="w", value=v) for i, v in enumerate(values)
    ]
    for name in ("h.jsonl", "h.edn"):
        p = tmp_path / name
        write_history(History(ops), p)
        back = read_history(p)
        assert [op.value for op in back] == values
        assert type(back[0].value) is int and type(back[4].value[1]) is int
    # An extra field sends JSONL through orjson's dicts: still exact.
    p = tmp_path / "extra.jsonl"
    write_history(History([op.replace(extra={"x": 1}) for op in ops]), p)
    back = read_history(p)
    assert [op.value for op in back] == values and back[0].extra == {"x": 1}
    assert type(back[0].value) is int and type(back[4].value[1]) is int


_PLAIN = '{"process":0,"type":"invoke","f":"r"}'


@pytest.mark.parametrize(
    "body",
    [
        _PLAIN + " " + _PLAIN.replace(":0", ":1", 1) + "\n",  # two ops on one line
        '{"process":0,"type":"invoke",\n"f":"r"}\n',  # one op over two lines
        _PLAIN + "\n\n" + _PLAIN.replace(":0", ":1", 1) + "\n",  # a blank line
        _PLAIN + "\r\n" + _PLAIN.replace(":0", ":1", 1) + "\r\n",  # CRLF
        '{"process":0,"type":"invoke","f":null}\n',  # f null becomes "" on the dict path
        '{"process":true,"type":"invoke","f":"r"}\n',
        '{"process":0,"type":"invoke","f":"r","time":1.5}\n',
        '{"process":0,"type":"invoke","f":"r","extra":1}\n',
        '{"process":0,"type":"begin","f":"r"}\n',
        "",
    ],
)
def test_msgspec_path_leaves_anything_unusual_to_the_dict_path(body: str) -> None:
    """decode_json_ops takes only one plain op a line; all else gets None."""
    from jepsy.history import decode_json_ops

    assert decode_json_ops(body.encode(), lines=True) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            _json_values,
            st.sampled_from(["ok", "fail", "info"]),
            st.one_of(st.none(), st.sampled_from(["n1", "n2"])),
            st.one_of(st.none(), _json_values),
        ),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
    st.booleans(),
)
def test_msgspec_and_dict_paths_build_the_same_history(
    steps: list[Any], with_index: bool, with_time: bool
) -> None:
    """Plain op lines go through msgspec, and give what orjson's dicts give."""
    from jepsy.history import decode_json_ops, history_from_json_ops, history_from_op_dicts

    dicts: list[dict[str, Any]] = []
    open_: set[int] = set()
    for p, value, typ, node, error in steps:
        d: dict[str, Any] = {"process": p, "f": "w", "value": value}
        if p in open_:
            open_.discard(p)
            d.update(type=typ, node=node, error=error)
        else:
            open_.add(p)
            d["type"] = "invoke"
        if with_index:
            d["index"] = len(dicts)
        if with_time:
            d["time"] = 10 * len(dicts)
        dicts.append(d)
    try:
        text = "".join(json.dumps(d, separators=(",", ":"), allow_nan=False) + "\n" for d in dicts)
    except ValueError:  # an infinity: not JSON
        assume(False)
    ops = decode_json_ops(text.encode(), lines=True)
    assert ops is not None and len(ops) == len(dicts)
    fast = history_from_json_ops(ops, "x")
    slow = history_from_op_dicts(dicts, "x")
    assert fast is not None and slow is not None
    assert list(fast) == list(slow)
    assert list(fast.partners()) == list(slow.partners())


def test_reading_leaves_no_young_collection_behind(tmp_path: Path) -> None:
    """A read leaves the collector as it found it, and its new objects in
    the oldest generation: the next allocation does not start a collection
    that walks them all."""
    import gc

    path = tmp_path / "h.jsonl"
    ops = [
        Op(index=i, process=i % 7, type="invoke" if i % 2 == 0 else "ok", f="w", value=[i, [i]])
        for i in range(20_000)
    ]
    for i in range(1, len(ops), 2):
        ops[i] = ops[i].replace(process=ops[i - 1].process)
    write_history(History(ops), path)
    for fmt in ("jsonl", "edn"):
        p = path.with_suffix("." + fmt)
        write_history(History(ops), p, format=fmt)
        assert gc.isenabled()
        young_before = gc.get_stats()[0]["collections"]
        h = read_history(p)
        assert gc.isenabled() and len(h) == len(ops)
        assert gc.get_count()[0] < 100, gc.get_count()
        assert gc.get_stats()[0]["collections"] - young_before <= 1
        gc.disable()
        try:
            read_history(p)
            assert not gc.isenabled()
        finally:
            gc.enable()


def test_garbage_from_before_a_read_is_not_kept_until_a_full_collection(tmp_path: Path) -> None:
    """Only what is alive goes to the oldest generation: a garbage cycle
    made just before the read is collected then, not long after."""
    import weakref

    p = tmp_path / "h.jsonl"
    write_history(History(_ops()), p)

    class Node:
        other: Any = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # a cycle: only the collector frees it
    read_history(p)
    assert gone() is None


def test_a_read_history_pickles_and_copies(tmp_path: Path) -> None:
    """Columns made on first use (time, node, error) pickle as plain lists."""
    import copy
    import pickle

    p = tmp_path / "h.jsonl"
    write_history(History(_ops()), p)
    h = read_history(p)
    back = pickle.loads(pickle.dumps(h))
    assert list(back) == list(h) == _ops()
    assert list(copy.deepcopy(h)) == _ops()
    assert list(h.columns().time) == [op.time for op in _ops()]
    assert list(h.columns().node) == [op.node for op in _ops()]


def _edn_ops_text(n: int, extra: str = "") -> str:
    lines = []
    for i in range(n):
        p = i // 2 % 5
        typ = ":invoke" if i % 2 == 0 else ":ok"
        lines.append(
            f"{{:index {i}, :type {typ}, :process {p}, :f :write, :value {i // 2}{extra}}}"
        )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "middle"),
    [
        ("plain", ""),
        # The first line break before '{' after the middle is inside a string.
        ("string", '{:process 99, :type :invoke, :f :w, :value "a\n{:x 1}\n{b"}\n'),
        # ... or inside a vector of maps, one map a line.
        ("vector", "{:process 99, :type :invoke, :f :w, :value [{:a 1}\n{:b 2}\n{:c 3}]}\n"),
        # ... or between a key and its value.
        ("key", "{:process 99, :type :invoke, :f :w, :value\n{:a 1}}\n"),
        # Keyword values (restored afterwards) and comments.
        ("keywords", "{:process 99, :type :invoke, :f :w, :value :x} ; note\n"),
    ],
)
def test_edn_read_in_two_halves_equals_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, middle: str
) -> None:
    """A long EDN stream is rewritten in two halves at once (one in a forked
    child); wherever the cut falls, the history is the one-process one."""
    import jepsy.edn as edn

    body = _edn_ops_text(400)
    half = len(body) // 2
    cut = body.index("\n", half) + 1
    text = body[:cut] + middle + body[cut:]
    p = _write(tmp_path, f"{name}.edn", text)
    whole = history_from_located(iter_edn_ops(text, source=str(p)), str(p), text)
    monkeypatch.setattr(edn, "PARALLEL_MIN_CHARS", 1000)
    calls: list[bool] = []
    real = edn._edn_as_json_parallel

    def spy(t: str) -> Any:
        got = real(t)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(edn, "_edn_as_json_parallel", spy)
    assert list(read_history(p)) == list(whole)
    assert len(calls) == 1
    if name in ("plain", "keywords"):
        assert calls == [True]  # the halves were taken
    monkeypatch.setattr(edn, "CPUS", 1)  # one process: the same again
    assert list(read_history(p)) == list(whole)


@pytest.mark.parametrize("closing", ["]", "\n]", ", ]", "\n ,\n]"])
def test_a_vector_of_op_maps_takes_the_msgspec_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closing: str
) -> None:
    """One EDN vector of op maps, separators before its ']' or not, is read
    through msgspec and gives what the general parser gives."""
    import jepsy.history as hist

    text = "[" + _edn_ops_text(40).rstrip("\n") + closing
    p = _write(tmp_path, "v.edn", text)
    whole = history_from_located(iter_edn_ops(text, source=str(p)), str(p), text)
    used: list[int] = []
    real = hist.history_from_json_ops

    def spy(ops: Any, source: str) -> Any:
        used.append(len(ops))
        return real(ops, source)

    monkeypatch.setattr(hist, "history_from_json_ops", spy)
    assert list(read_history(p)) == list(whole)
    assert used == [40]
