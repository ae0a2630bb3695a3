from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jepsy.report.digest as digest_mod
from jepsy.checkers.perf import perf_data
from jepsy.checkers.stats import stats
from jepsy.core import noop_test
from jepsy.errors import HistoryError
from jepsy.history import History, read_history, write_history
from jepsy.report.digest import HistoryDigest, digest_of, read_digest

MS = 1_000_000


def norm(d: HistoryDigest) -> HistoryDigest:
    """``d`` with latency points sorted (the fast path lists them by completion)."""
    lat = {k: sorted(v) for k, v in d.perf.latencies.items() if v}
    perf = type(d.perf)(lat, list(d.perf.nemesis), d.perf.end_ns)
    return HistoryDigest(
        d.op_count, d.client_op_count, d.process_count, d.by_f, perf, d.nemesis_events
    )


def ops(n: int = 60) -> list[dict[str, Any]]:
    """Reads/writes by 3 threads, info retiring processes, pending ops, nemesis events."""
    out: list[dict[str, Any]] = []
    procs = [0, 1, 2]
    open_: dict[int, dict[str, Any]] = {}
    for i in range(n):
        th = i % 3
        p = procs[th]
        t = i * 3 * MS
        if i % 17 == 5:
            out.append(
                {"process": "nemesis", "type": "info", "f": "kill", "value": ["n1"], "time": t}
            )
        if p in open_:
            inv = open_.pop(p)
            typ = ("ok", "ok", "fail", "info")[i % 4]
            out.append({**inv, "type": typ, "time": t + (i % 5) * MS, "error": None})
            if typ == "info":
                procs[th] += 3
        else:
            inv = {
                "process": p,
                "type": "invoke",
                "f": ("read", "write")[i % 2],
                "value": i,
                "time": t,
            }
            open_[p] = inv
            out.append(inv)
    return out


def write(path: Path, ds: list[Any], *, tail: str = "\n") -> Path:
    path.write_text("\n".join(json.dumps(d) for d in ds) + tail)
    return path


def test_fast_digest_matches_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path / "history.jsonl", ops())
    slow = digest_of(read_history(p))
    assert slow.by_f["read"]["info_count"] >= 1 and slow.nemesis_count == 4
    assert slow.process_count > 3 and slow.client_op_count == 60
    h = read_history(p)
    assert slow.by_f == stats().check(noop_test(), h, {}).details["by_f"]
    assert slow.perf == perf_data(h)
    monkeypatch.setattr(digest_mod, "read_history", None)  # the fast path alone
    assert norm(read_digest(p)) == norm(slow)
    monkeypatch.setattr(digest_mod, "CHUNK", 50)  # many chunks, boundaries everywhere
    assert norm(read_digest(p)) == norm(slow)


def test_odd_files_go_through_the_reader(tmp_path: Path) -> None:
    ds = ops(20)
    # blank lines, a torn last line, float times, no indexes, an EDN copy
    (tmp_path / "blank.jsonl").write_text(
        "\n" + "\n\n".join(json.dumps(d) for d in ds) + "\n\n  \n"
    )
    write(tmp_path / "torn.jsonl", ds, tail='\n{"process": 0, "ty')
    write(tmp_path / "float.jsonl", [{**d, "time": float(d["time"])} for d in ds])
    write_history(History.from_dicts(ds), tmp_path / "h.edn")
    want = norm(digest_of(History.from_dicts(ds)))
    for name in ("blank.jsonl", "torn.jsonl", "float.jsonl", "h.edn"):
        assert norm(read_digest(tmp_path / name)) == want, name


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"process": 0, "type": "invoke", "f": "r"}', "nope"], "not valid JSON"),
        (['{"process": 0, "type": "invoke", "f": "r"}'] * 2, "had not completed"),
        (['{"process": 0, "type": "ok", "f": "r"}'], "has no invocation"),
        (['{"process": true, "type": "ok", "f": "r"}'], "process must be"),
        (['{"process": 0, "type": "done", "f": "r"}'], "type must be one of"),
        (['{"process": 0, "f": "r"}'], "missing the field"),
        (["[1, 2]", '{"process": 0, "type": "invoke", "f": "r"}'], "expected a JSON object"),
    ],
)
def test_bad_histories_fail_as_the_reader_fails(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    p = tmp_path / "history.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(HistoryError) as fast:
        read_digest(p)
    with pytest.raises(HistoryError) as slow:
        read_history(p)
    assert message in str(fast.value)
    assert str(fast.value) == str(slow.value)


_odd = st.sampled_from([None, True, 1.5, "x", [1], {"a": 1}, -1, float("nan")])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 40),
    spoil=st.lists(
        st.tuples(
            st.integers(0, 60),
            st.sampled_from(["process", "type", "f", "time", "index", "value", "node"]),
            _odd,
        ),
        max_size=2,
    ),
    drop=st.lists(st.integers(0, 60), max_size=2),
    tail=st.sampled_from(["\n", "", '\n{"proc', "\n\n"]),
)
def test_any_history_file_digests_as_the_reader_reads_it(
    tmp_path: Path,
    n: int,
    spoil: list[tuple[int, str, Any]],
    drop: list[int],
    tail: str,
) -> None:
    ds = ops(n)
    for i, field, v in spoil:
        if i < len(ds):
            ds[i] = {**ds[i], field: v}
    ds = [d for i, d in enumerate(ds) if i not in drop]
    p = tmp_path / "history.jsonl"
    p.write_text("\n".join(json.dumps(d) for d in ds) + (tail if ds else ""))
    try:
        want: HistoryDigest | str = norm(digest_of(read_history(p)))
    except HistoryError as e:
        want = str(e)
    try:
        got: HistoryDigest | str = norm(read_digest(p))
    except HistoryError as e:
        got = str(e)
    assert got == want


def test_unterminated_last_line_with_nan_is_not_taken_for_torn(tmp_path: Path) -> None:
    """orjson rejects NaN where the reader's decoder accepts it: a last line
    without its newline holding NaN is a bad op, not a torn write."""
    p = tmp_path / "history.jsonl"
    p.write_text('{"process":0,"type":"invoke","f":"read"}\n{"process":NaN,"type":"ok","f":"read"}')
    with pytest.raises(HistoryError) as reader:
        read_history(p)
    with pytest.raises(HistoryError) as dig:
        read_digest(p)
    assert str(dig.value) == str(reader.value)
    assert "got nan" in str(dig.value)
