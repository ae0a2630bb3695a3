"""The run report: one offline HTML page per run directory.

:func:`write_report` reads what a run left in its directory (``test.json``,
``results.json``, ``history.jsonl``, ``jepsy.log``, ``nodes/``) and writes
``report.html`` next to them: the test's configuration, the verdict of
every checker with its counts, the linearizability failure drawn as a
picture, latency and throughput plots with the faults shaded, the nemesis
activity, and links to every file.  The page is self-contained (inline CSS
and SVG, no scripts, no network) and every value from the run is escaped,
so a history full of ``<script>`` is shown, not run.

A report is most needed when something went wrong, so nothing missing or
malformed stops it: a run that crashed before checking has no
``results.json`` and the page says so and shows the rest; a section that
cannot be drawn shows the error in its place.

By example::

    >>> from pathlib import Path
    >>> write_report(Path("store/latest"))  # doctest: +SKIP
    PosixPath('store/latest/report.html')
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jepsy.history import History, read_history
from jepsy.report.digest import HistoryDigest, digest_of, read_digest
from jepsy.report.linear import failure_html
from jepsy.report.svg import esc

REPORT_FILE = "report.html"
MAX_JSON_CHARS = 20_000
MAX_LIST = 60
MAX_FILES = 300
MAX_EVENTS = 200
LOG_TAIL = 80

_CSS = """
:root{--ok:#1b7f3b;--bad:#c62828;--unk:#b26a00;--mute:#6b7280;--line:#e5e7eb;--bg:#f8fafc}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 color:#1f2937;background:var(--bg)}
header{background:#111827;color:#f9fafb;padding:18px 28px;display:flex;align-items:center;gap:18px}
header h1{font-size:20px;margin:0;font-weight:600;word-break:break-all}
header .sub{color:#9ca3af;font-size:13px}
header .verdicts{color:#fca5a5}
header nav{margin-left:auto;display:flex;gap:14px;flex-wrap:wrap}
header nav a{color:#d1d5db;text-decoration:none;font-size:13px}
header nav a:hover{color:#fff;text-decoration:underline}
main{max-width:1120px;margin:0 auto;padding:18px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:16px;margin:0 0 10px}
h3{font-size:14px;margin:16px 0 8px}
h4{font-size:13px;margin:12px 0 6px;color:#374151}
.badge{display:inline-block;padding:3px 10px;border-radius:999px;font-weight:700;font-size:12px;
 letter-spacing:.04em;color:#fff;white-space:nowrap}
.b-valid{background:var(--ok)}.b-invalid{background:var(--bad)}.b-unknown{background:var(--unk)}
.b-none{background:#6b7280}
header .badge{font-size:15px;padding:6px 16px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:#374151;font-weight:600;background:#f9fafb}
table.kv th{width:220px}
td.num{font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code{background:#f3f4f6;padding:1px 4px;border-radius:3px;word-break:break-all}
pre{background:#f3f4f6;padding:10px;border-radius:6px;overflow:auto;max-height:420px;white-space:pre-wrap;
 word-break:break-all}
.note{color:var(--mute);font-size:13px}
.warn{background:#fff7ed;border:1px solid #fed7aa;color:#9a3412;padding:8px 12px;border-radius:6px}
.err{color:var(--bad)}
.card{border:1px solid var(--line);border-radius:6px;margin:12px 0;padding:10px 14px}
.card>h3{margin:0 0 8px;display:flex;gap:10px;align-items:center}
.svgwrap{overflow-x:auto;margin:8px 0}
.svgwrap svg{max-width:100%;height:auto}
.linear .svgwrap svg{max-width:none}
ul.files{columns:2;margin:0;padding-left:18px}
.indent1{padding-left:24px}.indent2{padding-left:44px}.indent3{padding-left:64px}
details>summary{cursor:pointer;color:#374151}
footer{color:var(--mute);font-size:12px;text-align:center;padding:10px}
"""


# -- small HTML helpers ------------------------------------------------------


def _badge(valid: Any) -> str:
    if valid is True:
        return '<span class="badge b-valid">VALID</span>'
    if valid is False:
        return '<span class="badge b-invalid">INVALID</span>'
    if valid == "unknown":
        return '<span class="badge b-unknown">UNKNOWN</span>'
    return '<span class="badge b-none">NOT CHECKED</span>'


def _j(v: Any, limit: int = MAX_JSON_CHARS) -> str:
    try:
        s = json.dumps(v, indent=1, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + f"\n... ({len(s) - limit} more characters)"


def _inline(v: Any, limit: int = 300) -> str:
    if isinstance(v, str):
        s = v
    else:
        try:
            s = json.dumps(v, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            s = repr(v)
    return s if len(s) <= limit else s[: limit - 1] + "\u2026"


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _cell(v: Any) -> str:
    if v is None:
        return '<td class="note">\u2014</td>'
    if isinstance(v, bool):
        return f"<td>{esc(_inline(v))}</td>"
    if isinstance(v, int | float):
        return f'<td class="num">{esc(v)}</td>'
    return f"<td>{esc(_inline(v))}</td>"


def _href(rel: str) -> str:
    return esc("/".join(urllib.parse.quote(p) for p in rel.split("/")))


def _table(header: list[str], rows: list[list[Any]], *, raw_cols: tuple[int, ...] = ()) -> str:
    out = ["<table><tr>", *(f"<th>{esc(h)}</th>" for h in header), "</tr>"]
    for r in rows:
        out.append("<tr>")
        for i, v in enumerate(r):
            out.append(f"<td>{v}</td>" if i in raw_cols else _cell(v))
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _human(label: str) -> str:
    return label.replace("_", " ")


# -- loading -----------------------------------------------------------------


def _load_json(path: Path) -> tuple[Any, str | None]:
    if not path.exists():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, ValueError) as e:
        return None, f"{path.name} could not be read: {e}"


def _load_history(
    run_dir: Path, *, ops: bool
) -> tuple[HistoryDigest | None, History | None, str | None]:
    """(digest, history, error) of the run's history file.

    The ops themselves (``history``) are read only when ``ops`` is true:
    only the linearizability pictures need them; everything else is drawn
    from the digest, which is several times cheaper to read."""
    p = run_dir / "history.jsonl"
    if not p.exists():
        edn = run_dir / "history.edn"
        if not edn.exists():
            return None, None, None
        p = edn
    try:
        if ops:
            history = read_history(p)
            return digest_of(history), history, None
        return read_digest(p), None, None
    except Exception as e:  # a broken history must not break the report
        return None, None, f"{p.name} could not be read: {e}"


def _draws_linear(results: Mapping[str, Any], depth: int = 0) -> bool:
    """Whether the page will draw a linearizability failure (which needs the ops)."""
    if _is_linear_failure(results):
        return True
    return depth < 50 and any(
        isinstance(v, Mapping) and _draws_linear(v, depth + 1) for v in results.values()
    )


# -- sections ------------------------------------------------------------------


def _summary(test: Mapping[str, Any], run_dir: Path) -> str:
    spec = test.get("spec") if isinstance(test.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    rows: list[tuple[str, Any]] = []

    def add(label: str, *keys: str) -> None:
        for k in keys:
            v = spec.get(k) if k in spec else test.get(k)
            if v not in (None, "", [], {}):
                rows.append((label, v))
                return

    add("Test", "name")
    add("Nodes", "nodes")
    add("Database", "db")
    add("Workload", "workload")
    add("Nemesis", "nemesis")
    add("Client", "client")
    add("Concurrency", "concurrency")
    add("Time limit (s)", "time_limit")
    add("Op timeout (s)", "op_timeout")
    add("Seed", "seed")
    add("Remote", "remote")
    add("Checker", "checker")
    add("Generator", "generator")
    rows.append(("Run directory", str(run_dir)))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{_value_html(v)}</td></tr>" for k, v in rows)
    extra = {
        k: v for k, v in spec.items() if k not in {"name", "nodes", "db", "workload", "nemesis"}
    }
    more = ""
    if extra:
        more = f"<details><summary>all options</summary><pre>{esc(_j(extra))}</pre></details>"
    return f'<table class="kv">{body}</table>{more}'


def _value_html(v: Any) -> str:
    if isinstance(v, list) and all(_scalar(x) for x in v):
        return ", ".join(f"<code>{esc(_inline(x, 120))}</code>" for x in v[:MAX_LIST]) + (
            f" \u2026 ({len(v)} in all)" if len(v) > MAX_LIST else ""
        )
    if _scalar(v):
        s = str(v) if isinstance(v, str) else _inline(v)
        return esc(s if len(s) <= 2000 else s[:2000] + "\u2026")
    return f"<pre>{esc(_j(v, 4000))}</pre>"


def _walk(
    res: Mapping[str, Any], name: str = "", depth: int = 0
) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    yield name, depth, res
    kids = res.get("checkers")
    if isinstance(kids, Mapping):
        for k, v in kids.items():
            if isinstance(v, Mapping):
                yield from _walk(v, f"{name}/{k}" if name else str(k), depth + 1)


def _is_linear_failure(d: Mapping[str, Any]) -> bool:
    return d.get("valid") is False and ("final_paths" in d or "configs" in d) and "op" in d


_SKIP = {"valid", "error", "seconds", "checkers", "traceback"}


def _details_html(d: Mapping[str, Any], history: History | None, *, key: Any = None) -> str:
    parts: list[str] = []
    if d.get("error"):
        parts.append(f'<p class="err">{esc(_inline(d["error"], 4000))}</p>')
    scalars = [(k, v) for k, v in d.items() if k not in _SKIP and _scalar(v)]
    if scalars:
        rows = "".join(f"<tr><th>{esc(_human(k))}</th>{_cell(v)}</tr>" for k, v in scalars)
        parts.append(f'<table class="kv">{rows}</table>')
    linear_keys = {"op", "previous_ok", "configs", "final_paths"}
    if _is_linear_failure(d):
        parts.append(failure_html(d, history=history, key=key))
    for k, v in d.items():
        if k in _SKIP or _scalar(v) or (k in linear_keys and _is_linear_failure(d)):
            continue
        if k == "keys" and isinstance(v, Mapping):
            shown = str(d.get("key")) if _is_linear_failure(d) else None
            parts.append(_keys_html(v, history, skip=shown))
            continue
        parts.append(_special(k, v, history, total=d.get(f"{k}_count")))
    if d.get("traceback"):
        parts.append(
            f"<details><summary>traceback</summary><pre>{esc(_j(d['traceback']))}</pre></details>"
        )
    return "".join(parts)


def _special(k: str, v: Any, history: History | None, *, total: Any = None) -> str:
    """``v`` (details key ``k``) as HTML; ``total``: the full count when ``v`` is a sample."""
    title = f"<h4>{esc(_human(k))}</h4>"
    if k == "by_f" and isinstance(v, Mapping):
        rows = [
            [f, s.get("count"), s.get("ok_count"), s.get("fail_count"), s.get("info_count")]
            for f, s in v.items()
            if isinstance(s, Mapping)
        ]
        return title + _table(["f", "count", "ok", "fail", "info"], rows)
    if k == "latency_ms" and isinstance(v, Mapping):
        rows = [
            [
                f,
                s.get("count"),
                s.get("ok_count"),
                s.get("p50"),
                s.get("p95"),
                s.get("p99"),
                s.get("max"),
            ]
            for f, s in v.items()
            if isinstance(s, Mapping)
        ]
        return "<h4>latency of ok ops (ms)</h4>" + _table(
            ["f", "ops", "ok", "p50", "p95", "p99", "max"], rows
        )
    if k == "exceptions" and isinstance(v, list):
        rows = [
            [
                e.get("count"),
                _inline(e.get("error"), 400),
                _inline(e.get("fs")),
                _inline(e.get("types")),
            ]
            for e in v[:MAX_LIST]
            if isinstance(e, Mapping)
        ]
        return title + _table(["count", "error", "f", "type"], rows)
    if k == "nemesis_intervals" and isinstance(v, list):
        rows = [
            [i.get("name"), i.get("start"), i.get("stop"), i.get("start_f"), i.get("stop_f")]
            for i in v[:MAX_EVENTS]
            if isinstance(i, Mapping)
        ]
        return title + _table(["fault", "from (s)", "to (s)", "start op", "stop op"], rows)
    if k == "files" and isinstance(v, list):
        links = ", ".join(
            f'<a href="{_href(str(f))}">{esc(f)}</a>' for f in v if isinstance(f, str)
        )
        return f"<p>files: {links}</p>"
    if k == "keys" and isinstance(v, Mapping):
        return _keys_html(v, history)
    if isinstance(v, list) and all(_scalar(x) for x in v):
        if not v:
            return ""
        shown = " ".join(f"<code>{esc(_inline(x, 120))}</code>" for x in v[:MAX_LIST])
        n = total if isinstance(total, int) and total >= len(v) else len(v)
        more = f" \u2026 ({min(len(v), MAX_LIST)} of {n} shown)" if n > MAX_LIST else ""
        if MAX_LIST >= n > len(v):
            more = f" \u2026 ({len(v)} of {n} shown)"
        return f"<p><strong>{esc(_human(k))}</strong>: {shown}{more}</p>"
    if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
        cols: list[str] = []
        for x in v[:MAX_LIST]:
            for c in x:
                if c not in cols and len(cols) < 8:
                    cols.append(str(c))
        rows = [[x.get(c) for c in cols] for x in v[:MAX_LIST]]
        more = (
            f'<p class="note">{len(v)} entries, first {MAX_LIST} shown</p>'
            if len(v) > MAX_LIST
            else ""
        )
        return title + _table(cols, rows) + more
    if isinstance(v, list) and not v:
        return ""
    if isinstance(v, Mapping) and v and all(_scalar(x) for x in v.values()):
        rows_kv = "".join(
            f"<tr><th>{esc(_human(str(a)))}</th>{_cell(b)}</tr>" for a, b in v.items()
        )
        return f'{title}<table class="kv">{rows_kv}</table>'
    return f"<details><summary>{esc(_human(k))}</summary><pre>{esc(_j(v))}</pre></details>"


def _keys_html(keys: Mapping[str, Any], history: History | None, *, skip: str | None = None) -> str:
    """Per-key verdicts, and the details of up to 3 failing keys (not ``skip``:
    already drawn above)."""
    rows: list[list[Any]] = []
    pictures: list[str] = []
    for k, r in list(keys.items())[:300]:
        if not isinstance(r, Mapping):
            continue
        summary = ", ".join(
            f"{_human(n)} {x}" for n, x in r.items() if n.endswith("_count") and _scalar(x)
        )
        rows.append([esc(k), _badge(r.get("valid")), esc(summary or _inline(r.get("error") or ""))])
        if r.get("valid") is False and len(pictures) < 3 and k != skip:
            pictures.append(
                f'<div class="card"><h3>key <code>{esc(k)}</code> {_badge(False)}</h3>'
                f"{_details_html(r, history, key=k)}</div>"
            )
    table = _table(["key", "verdict", "summary"], rows, raw_cols=(0, 1, 2))
    verdicts: dict[str, int] = {}
    for r in keys.values():
        if isinstance(r, Mapping):
            v = r.get("valid")
            label = "valid" if v is True else "invalid" if v is False else "unknown"
            verdicts[label] = verdicts.get(label, 0) + 1
    counts = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
    summary = f"per key ({len(keys)} listed: {counts})"
    if len(rows) > 20:
        table = f"<details><summary>{esc(summary)}</summary>{table}</details>"
    else:
        table = f"<h4>{esc(summary)}</h4>{table}"
    return table + "".join(pictures)


def _checkers(results: Mapping[str, Any], history: History | None) -> str:
    nodes = list(_walk(results))
    rows = []
    for name, depth, r in nodes:
        secs = r.get("seconds")
        rows.append(
            [
                f'<span class="indent{min(depth, 3)}">{esc(name or "(all)")}</span>',
                _badge(r.get("valid")),
                esc(f"{secs:.3f} s" if isinstance(secs, int | float) else ""),
                esc(_inline(r.get("error") or "", 300)),
            ]
        )
    out = [_table(["checker", "verdict", "time", "error"], rows, raw_cols=(0, 1, 2, 3))]
    for name, _depth, r in nodes:
        body = _details_html(r, history)
        if not body:
            continue
        out.append(
            f'<div class="card"><h3>{esc(name or "result")} {_badge(r.get("valid"))}</h3>{body}</div>'
        )
    return "".join(out)


def _perf(digest: HistoryDigest, plot: Any) -> str:
    from jepsy.checkers.perf import perf_figures

    fig = perf_figures(digest.perf, plot if isinstance(plot, Mapping) else None)
    d = fig.details
    note = f'<p class="note">Latency plot: {esc(fig.thinning)}.</p>' if fig.thinning else ""
    return (
        f'<div class="svgwrap">{fig.latency_svg}</div>{note}'
        f'<div class="svgwrap">{fig.rate_svg}</div>'
        + _special("latency_ms", d["latency_ms"], None)
        + _special("throughput", d["throughput"], None)
    )


def _nemesis(digest: HistoryDigest, plot: Any) -> str:
    from jepsy.checkers.perf import nemesis_intervals

    ivs, _ = nemesis_intervals(digest.perf, plot if isinstance(plot, Mapping) else None)
    count = digest.nemesis_count
    if not count:
        return '<p class="note">No nemesis activity in this history.</p>'
    out = []
    if ivs:
        out.append(_special("nemesis_intervals", [iv.to_json() for iv in ivs], None))
    rows = [
        [
            round(e.time / 1e9, 3),
            e.type,
            e.f,
            _inline(e.value, 200),
            _inline(e.error, 200) if e.error is not None else "",
        ]
        for e in digest.nemesis_events[:MAX_EVENTS]
    ]
    more = (
        f'<p class="note">{count} nemesis events, first {MAX_EVENTS} shown</p>'
        if count > MAX_EVENTS
        else ""
    )
    out.append("<h4>events</h4>" + _table(["time (s)", "type", "f", "value", "error"], rows) + more)
    return "".join(out)


def _history_summary(digest: HistoryDigest) -> str:
    rows = [
        ("ops", digest.op_count),
        ("client ops", digest.client_op_count),
        ("processes", digest.process_count),
        ("duration (s)", round(digest.end_ns / 1e9, 3)),
    ]
    body = "".join(f"<tr><th>{esc(k)}</th>{_cell(v)}</tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>' + _special("by_f", digest.by_f, None)


def _files(run_dir: Path) -> str:
    known = [
        ("history.jsonl", "the history, one op per line"),
        ("history.edn", "the history (EDN)"),
        ("results.json", "the checkers' verdict"),
        ("test.json", "the test"),
        ("jepsy.log", "the run's log"),
        ("timeline.html", "timeline of ops per process"),
        ("latency-raw.svg", "latency plot"),
        ("rate.svg", "throughput plot"),
    ]
    items = [
        f'<li><a href="{_href(n)}">{esc(n)}</a> <span class="note">{esc(d)}</span></li>'
        for n, d in known
        if (run_dir / n).exists()
    ]
    shown = {n for n, _ in known} | {REPORT_FILE}
    for p in sorted(run_dir.iterdir(), key=lambda p: p.name)[:MAX_FILES]:
        if p.is_file() and p.name not in shown and not p.name.startswith("."):
            items.append(f'<li><a href="{_href(p.name)}">{esc(p.name)}</a></li>')
    out = [f'<ul class="files">{"".join(items)}</ul>' if items else '<p class="note">none</p>']
    nodes = run_dir / "nodes"
    if nodes.is_dir():
        node_items = []
        count = 0
        for root, dirs, files in os.walk(nodes):
            dirs.sort()
            for f in sorted(files):
                count += 1
                if count > MAX_FILES:
                    break
                rel = (Path(root) / f).relative_to(run_dir).as_posix()
                node_items.append(f'<li><a href="{_href(rel)}">{esc(rel)}</a></li>')
            if count > MAX_FILES:
                node_items.append(f"<li>\u2026 more than {MAX_FILES} files</li>")
                break
        out.append("<h4>node logs</h4>")
        out.append(
            f'<ul class="files">{"".join(node_items)}</ul>'
            if node_items
            else '<p class="note">no files</p>'
        )
    return "".join(out)


def _log_tail(run_dir: Path) -> str:
    p = run_dir / "jepsy.log"
    if not p.exists():
        return ""
    with open(p, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64_000))
        text = fh.read().decode("utf-8", "replace")
    lines = text.splitlines()[-LOG_TAIL:]
    return (
        f"<details><summary>last {len(lines)} lines of jepsy.log</summary>"
        f"<pre>{esc(chr(10).join(lines))}</pre></details>"
    )


def _guard(title: str, fn: Callable[[], str], *, anchor: str) -> str:
    try:
        body = fn()
    except Exception as e:  # one broken section must not lose the rest of the report
        body = (
            f'<p class="err">This section could not be drawn: {esc(type(e).__name__)}: {esc(e)}</p>'
        )
    if not body:
        return ""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


# -- the page ------------------------------------------------------------------


def render_report(run_dir: Path) -> str:
    """The report page for ``run_dir`` as HTML text."""
    run_dir = Path(run_dir)
    test, test_err = _load_json(run_dir / "test.json")
    results, res_err = _load_json(run_dir / "results.json")
    if not isinstance(test, Mapping):
        test = {}
    if not isinstance(results, Mapping):
        results = None
    ops = results is not None and _draws_linear(results)
    digest, history, hist_err = _load_history(run_dir, ops=ops)
    name = str(test.get("name") or run_dir.parent.name or "run")
    verdict = results.get("valid") if results is not None else None
    warnings = [e for e in (test_err, res_err, hist_err) if e]
    if results is None and not res_err:
        warnings.append(
            "No results.json: this run never got as far as checking (it crashed, was "
            "killed, or is still running). Showing what it left."
        )
    if digest is None and not hist_err:
        warnings.append("No history file in this run directory.")
    plot = test.get("plot")
    sections = [
        "".join(f'<p class="warn">{esc(w)}</p>' for w in warnings),
        _guard("Test", lambda: _summary(test, run_dir), anchor="test"),
    ]
    if results is not None:
        res = results
        sections.append(
            _guard("Verdict by checker", lambda: _checkers(res, history), anchor="checkers")
        )
    if digest is not None:
        dg = digest
        sections.append(_guard("Performance", lambda: _perf(dg, plot), anchor="perf"))
        sections.append(_guard("Nemesis activity", lambda: _nemesis(dg, plot), anchor="nemesis"))
        sections.append(_guard("History", lambda: _history_summary(dg), anchor="history"))
    sections.append(_guard("Files", lambda: _files(run_dir) + _log_tail(run_dir), anchor="files"))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    nav = "".join(
        f'<a href="#{a}">{esc(t)}</a>'
        for a, t in (
            ("test", "Test"),
            ("checkers", "Verdicts"),
            ("perf", "Performance"),
            ("nemesis", "Nemesis"),
            ("history", "History"),
            ("files", "Files"),
        )
        if f'<section id="{a}">' in "".join(sections)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(name)} \u2014 jepsy report</title><style>{_CSS}</style></head><body>"
        f"<header>{_badge(verdict)}<div><h1>{esc(name)}</h1>"
        f'<div class="sub">{esc(run_dir.name)} \u00b7 jepsy report</div>'
        f"{_verdict_line(results)}</div><nav>{nav}</nav></header>"
        f"<main>{''.join(sections)}</main>"
        f"<footer>generated by jepsy at {esc(stamp)}; this page is self-contained and works offline</footer>"
        "</body></html>\n"
    )


def _verdict_line(results: Mapping[str, Any] | None) -> str:
    """Which checkers failed or could not decide, for the header."""
    if results is None:
        return ""
    bad = [
        n for n, _d, r in _walk(results) if n and r.get("valid") is False and not r.get("checkers")
    ]
    unk = [
        n
        for n, _d, r in _walk(results)
        if n and r.get("valid") == "unknown" and not r.get("checkers")
    ]
    bits = []
    if bad:
        bits.append("invalid: " + ", ".join(bad[:8]) + (" \u2026" if len(bad) > 8 else ""))
    if unk:
        bits.append("unknown: " + ", ".join(unk[:8]) + (" \u2026" if len(unk) > 8 else ""))
    if not bits:
        return ""
    return f'<div class="sub verdicts">{esc("; ".join(bits))}</div>'


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from what the run left; returns its path.

    Never fails because a piece is missing or malformed (it says so on the
    page); only an unwritable directory raises ``OSError``."""
    run_dir = Path(run_dir)
    page = render_report(run_dir)
    out = run_dir / REPORT_FILE
    tmp = run_dir / f".{REPORT_FILE}.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out
