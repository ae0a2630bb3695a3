"""A small, fast reader and writer for EDN, enough for Jepsen histories.

Jepsen and Knossos store histories as EDN (``history.edn``): either one
collection of op maps (``[{:process 0, :type :invoke, ...} ...]``, the
Knossos example files) or a stream of op maps, one per line (Jepsen's
store; Jepsen 0.3 prints them as ``#jepsen.history.Op{...}`` records).
The general-purpose EDN libraries for Python are parser-generator based and
far too slow for 100,000-op histories, so this module has its own reader.
The general parser is one regular expression over the whole text and a loop
with an explicit stack; it knows every line, so it also reports every
error.  Before it, histories take up to two fast paths, and anything a fast
path does not recognise goes to the next one:

1. the JSON path (``_json_op_maps``): C-level ``str`` passes rewrite the
   EDN into JSON (maps become objects: a keyword after ``{`` or a comma is
   guessed to be a key, and orjson checks every guess; other keywords
   become marked strings), and one ``orjson.loads`` returns the op maps as
   dicts.  Only ops and values that hold keywords other than the op fields'
   are touched afterwards.  It takes what Jepsen, Knossos and jepsy write,
   comments, escapes, records and lists included (121 of the 122 Knossos
   example files: one has a map entry without its comma), and refuses
   symbols, characters, sets, other tags, ``N``/``M``/ratios, integers
   beyond 64 bits and maps without commas;
2. the older token path (``_fast_op_maps``), which splits on whitespace and
   converts tokens through a cache.

The dicts become a :class:`History` column by column
(:func:`jepsy.history.history_from_op_dicts`), without :class:`Op`
objects; anything it does not take goes op by op.  ``bench/parse_history.py``
measures both formats.  Where the JSON path's time goes for 100,000 ops
(9.6 MB, 1.5 million tokens), in CPU seconds on the shared 2-core
development machine: rewriting 0.3 (a dozen keyword-run passes of about
0.013 each, the rest fixed passes: strings, whitespace, long numbers),
``orjson`` 0.14, the columnar history 0.2.  The collector is off while
reading (millions of new objects, no cycles).

The mapping to Python, chosen so that histories stay JSON-friendly:

========================  =================================================
EDN                       Python
========================  =================================================
``nil true false``        ``None True False``
``42 42N -7``             ``int``
``1.5 1e3 ##Inf ##NaN``   ``float``;  ``1.5M`` -> ``decimal.Decimal``
``1/3``                   ``fractions.Fraction``
``"text"``                ``str`` (escapes decoded)
``\\a \\newline \\u00e9`` ``str`` of one character
``:read :a/b``            :class:`Keyword` (``str`` subclass: ``"read"``)
``foo ns/bar``            :class:`Symbol` (``str`` subclass)
``[...]`` ``(...)``       ``list``
``{...}``                 ``dict``; list keys become tuples
``#{...}``                ``frozenset``; list elements become tuples
``#inst "..."``           ``str``; ``#uuid "..."`` -> ``str``
``#a.b.Rec{...}``         ``dict`` (records, e.g. ``#jepsen.history.Op``)
``#tag value``            ``value`` (any other tag is dropped)
``#_ form``               discarded
``; comment`` ``,``       whitespace
========================  =================================================

The writer maps back: :class:`Keyword` -> ``:name``, ``list``/``tuple`` ->
vector, ``frozenset``/``set`` -> ``#{}``, ``dict`` -> map, so reading and
writing a Jepsen history keeps its keywords.

By example::

    >>> ops = loads('[{:process 0, :type :invoke, :f :read, :value nil}]')
    >>> ops[0]["f"] == "read", ops[0]["value"]
    (True, None)
    >>> ops[0]["f"]
    Keyword('read')
    >>> dumps({Keyword("f"): Keyword("cas"), Keyword("value"): [1, 2]})
    '{:f :cas, :value [1 2]}'
"""

from __future__ import annotations

import json
import math
import os
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import partial
from itertools import accumulate, compress, repeat
from operator import add, and_, eq, getitem, is_, lt, not_, setitem, sub
from typing import IO, Any, TypeVar

from jepsy import history as _history
from jepsy.errors import HistoryError
from jepsy.forking import CPUS, can_fork, fork_call
from jepsy.history import History, Op

__all__ = [
    "EdnError",
    "Keyword",
    "Symbol",
    "dumps",
    "iter_edn_ops",
    "loads",
    "read_edn_history",
    "write_edn_history",
]


class EdnError(HistoryError):
    """Malformed EDN text; ``source`` and ``line`` say where."""


class Keyword(str):
    """An EDN keyword such as ``:read``; equal to (and hashed like) its name.

    ``Keyword("read") == "read"`` so code can compare with plain strings;
    the EDN writer prints it back as ``:read``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Keyword({str.__repr__(self)})"


class Symbol(str):
    """An EDN symbol such as ``foo`` or ``ns/bar``; printed back bare."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Symbol({str.__repr__(self)})"


# -- tokenizer ----------------------------------------------------------------

_DELIM = r"\s,;()\[\]{}\"\\"
# Every position of the text is matched by one alternative (the last one
# catches anything else), so finditer never skips characters silently.
_TOKEN = re.compile(
    r"(?:[\s,]+|;[^\n]*)*"  # whitespace, commas and comments
    r"(?:"
    rf":([^{_DELIM}]+)"  # 1 keyword (name without the colon)
    rf"|([-+]?\d+)(?=[{_DELIM}]|\Z)"  # 2 plain integer
    r"|([\[({])"  # 3 opening bracket
    r"|([\])}])"  # 4 closing bracket
    r'|"([^"\\]*(?:\\.[^"\\]*)*)"'  # 5 string body
    rf"|([^{_DELIM}#:@~^`'][^{_DELIM}]*)"  # 6 other atom: symbol, float, nil, 42N ...
    rf"|#(_|\{{|#[^{_DELIM}]*|[^{_DELIM}]+)"  # 7 dispatch: #_ #{ ##Inf #tag
    r"|\\(u[0-9a-fA-F]{4}|[a-z]{2,}(?=[" + _DELIM[:-2] + r"]|\Z)|.)"  # 8 character
    r"|\Z"  # the end (no group)
    r"|(.)"  # 9 anything else: an error
    r")",
    re.DOTALL,
)
_KW, _INT, _OPEN, _CLOSE, _STR, _ATOM, _DISPATCH, _CHAR, _BAD = range(1, 10)

_CONSTANTS: dict[str, Any] = {"nil": None, "true": True, "false": False}
_NAMED_CHARS = {
    "newline": "\n",
    "space": " ",
    "tab": "\t",
    "return": "\r",
    "backspace": "\b",
    "formfeed": "\f",
}
_STRING_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "/": "/",
}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_FLOAT_RE = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?M?\Z")
_INT_RE = re.compile(r"[-+]?\d+N\Z")
_RATIO_RE = re.compile(r"[-+]?\d+/\d+\Z")
_CLOSER = {"[": "]", "(": ")", "{": "}", "#{": "}"}
_SPECIAL_FLOATS = {"#Inf": math.inf, "#-Inf": -math.inf, "#NaN": math.nan}

# Frame kinds besides the bracket kinds above.
_DISCARD = "#_"


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _unescape(body: str, text: str, pos: int, source: str | None) -> str:
    def sub(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "u" and len(e) == 5:
            return chr(int(e[1:], 16))
        try:
            return _STRING_ESCAPES[e]
        except KeyError:
            raise EdnError(
                f'unknown escape \\{e} in a string; use \\n, \\t, \\", \\\\ or \\uXXXX',
                source=source,
                line=_line_of(text, pos),
            ) from None

    return _ESCAPE_RE.sub(sub, body)


def _atom(tok: str, text: str, pos: int, source: str | None) -> Any:
    """A bare token that is not a keyword or a plain integer."""
    if tok in _CONSTANTS:
        return _CONSTANTS[tok]
    c = tok[0]
    if c.isdigit() or (c in "+-" and len(tok) > 1 and tok[1].isdigit()):
        if _INT_RE.match(tok):
            return int(tok[:-1])
        if _FLOAT_RE.match(tok):
            if tok.endswith("M"):
                try:
                    return Decimal(tok[:-1])
                except InvalidOperation:  # pragma: no cover - the regex guarantees a number
                    pass
            else:
                return float(tok)
        if _RATIO_RE.match(tok):
            n, d = tok.split("/")
            if int(d) != 0:
                return Fraction(int(n), int(d))
        raise EdnError(f"malformed number {tok!r}", source=source, line=_line_of(text, pos))
    return Symbol(tok)


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple((_hashable(k), _hashable(x)) for k, x in v.items())
    return v


def _make_map(items: list[Any], text: str, pos: int, source: str | None) -> dict[Any, Any]:
    if len(items) % 2:
        raise EdnError(
            f"a map needs an even number of forms, this one has {len(items)} "
            f"(a key without a value?): {_preview(items)}",
            source=source,
            line=_line_of(text, pos),
        )
    it = iter(items)
    try:
        return dict(zip(it, it, strict=True))
    except TypeError:
        it = iter(_hashable(x) for x in items)
        return dict(zip(it, it, strict=True))


def _preview(v: Any, limit: int = 120) -> str:
    s = dumps(v) if not isinstance(v, list) else "[" + " ".join(dumps(x) for x in v[:20]) + "]"
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _parse(text: str, source: str | None) -> tuple[list[Any], list[int], list[int] | None]:
    """Parse every top-level form.

    Returns the forms, their start offsets and, when the text is exactly one
    vector or list, the start offsets of that collection's elements."""
    kwcache: dict[str, Keyword] = {}
    top: list[Any] = []
    top_pos: list[int] = []
    inner_pos: list[int] = []  # element offsets of top-level vectors/lists
    # A frame: (kind, parent items, open offset, tag).  Kinds: "[", "(", "{",
    # "#{", and the one-shot kinds "#_" (discard) and "#" (tag) that take one form.
    stack: list[tuple[str, list[Any], int, str]] = []
    cur = top
    plist: list[int] | None = top_pos  # where to record offsets at this depth
    oneshot = False
    for m in _TOKEN.finditer(text):
        g = m.lastindex
        vpos = -1
        if g == _KW:
            s = m.group(1)
            v: Any = kwcache.get(s)
            if v is None:
                v = kwcache[s] = Keyword(s)
        elif g == _INT:
            v = int(m.group(2))
        elif g in (_OPEN, _DISPATCH):
            if g == _OPEN:
                kind = m.group(3)
                pos = m.start(3)
                tag = ""
            else:
                d = m.group(7)
                pos = m.start(7) - 1
                if d == "{":
                    kind, tag = "#{", ""
                elif d == "_":
                    kind, tag = _DISCARD, ""
                elif d in _SPECIAL_FLOATS:
                    kind, tag = "", ""
                elif d[0].isalpha():
                    kind, tag = "#", d
                else:
                    raise EdnError(
                        f"unknown dispatch #{d}; EDN allows #{{...}}, #_, ##Inf, ##NaN and #tag",
                        source=source,
                        line=_line_of(text, pos),
                    )
            if kind:
                stack.append((kind, cur, pos, tag))
                cur = []
                oneshot = kind == _DISCARD or kind == "#"
                plist = inner_pos if len(stack) == 1 and kind in "[(" else None
                continue
            v = _SPECIAL_FLOATS[m.group(7)]
        elif g == _STR:
            v = m.group(5)
            if "\\" in v:
                v = _unescape(v, text, m.start(5), source)
        elif g == _ATOM:
            v = _atom(m.group(6), text, m.start(6), source)
        elif g == _CLOSE:
            closer = m.group(4)
            pos = m.start(4)
            if not stack:
                raise EdnError(
                    f"unbalanced bracket: {closer!r} closes nothing",
                    source=source,
                    line=_line_of(text, pos),
                )
            kind, parent, vpos, tag = stack[-1]
            if oneshot:
                what = "#_" if kind == _DISCARD else f"#{tag}"
                raise EdnError(
                    f"{what} at line {_line_of(text, vpos)} is followed by {closer!r} "
                    "instead of a form",
                    source=source,
                    line=_line_of(text, pos),
                )
            if _CLOSER[kind] != closer:
                raise EdnError(
                    f"unbalanced bracket: {closer!r} closes {kind!r} opened at line "
                    f"{_line_of(text, vpos)}; expected {_CLOSER[kind]!r}",
                    source=source,
                    line=_line_of(text, pos),
                )
            stack.pop()
            if kind == "{":
                v = _make_map(cur, text, vpos, source)
            elif kind == "#{":
                try:
                    v = frozenset(cur)
                except TypeError:
                    v = frozenset(_hashable(x) for x in cur)
            else:
                v = cur
            cur = parent
            n = len(stack)
            if n:
                k0 = stack[-1][0]
                oneshot = k0 == _DISCARD or k0 == "#"
                plist = inner_pos if n == 1 and k0 in "[(" else None
            else:
                oneshot = False
                plist = top_pos
        elif g == _CHAR:
            c = m.group(8)
            if len(c) == 1:
                v = c
            elif c[0] == "u" and len(c) == 5:
                v = chr(int(c[1:], 16))
            elif c in _NAMED_CHARS:
                v = _NAMED_CHARS[c]
            else:
                raise EdnError(
                    f"unknown character literal \\{c}",
                    source=source,
                    line=_line_of(text, m.start(8)),
                )
        elif g == _BAD:
            c = m.group(9)
            pos = m.start(9)
            if c == '"':
                raise EdnError(
                    "unterminated string (no closing '\"')",
                    source=source,
                    line=_line_of(text, pos),
                )
            raise EdnError(f"unexpected character {c!r}", source=source, line=_line_of(text, pos))
        else:  # only whitespace and comments were left
            break
        # v is a complete form: feed it to the one-shot frames waiting for one.
        discarded = False
        while oneshot:
            kind, parent, vpos, tag = stack.pop()
            cur = parent
            n = len(stack)
            if n:
                k0 = stack[-1][0]
                oneshot = k0 == _DISCARD or k0 == "#"
                plist = inner_pos if n == 1 and k0 in "[(" else None
            else:
                oneshot = False
                plist = top_pos
            if kind == _DISCARD:
                discarded = True
                break
            v = _tagged(tag, v, text, vpos, source)
        if discarded:
            continue
        if plist is not None:
            plist.append(vpos if vpos >= 0 else m.start(g))
        cur.append(v)
    if stack:
        kind, _parent, opos, tag = stack[-1]
        what = {
            "[": "vector '['",
            "(": "list '('",
            "{": "map '{'",
            "#{": "set '#{'",
            _DISCARD: "'#_'",
        }.get(kind, f"tag #{tag}")
        raise EdnError(
            f"unexpected end of input: {what} opened at line {_line_of(text, opos)} is not "
            "closed (a truncated file?)",
            source=source,
            line=_line_of(text, len(text)),
        )
    single = len(top) == 1 and isinstance(top[0], list)
    return top, top_pos, (inner_pos if single else None)


def _tagged(tag: str, v: Any, text: str, pos: int, source: str | None) -> Any:
    if tag in ("inst", "uuid"):
        if not isinstance(v, str):
            raise EdnError(
                f"#{tag} needs a string, got {_preview(v)}", source=source, line=_line_of(text, pos)
            )
        return str(v)
    return v


def loads(text: str, *, source: str | None = None) -> Any:
    """Read exactly one EDN form from ``text`` (raises :class:`EdnError`)."""
    forms, _pos, _inner = _parse(text, source)
    if len(forms) != 1:
        raise EdnError(f"expected exactly one EDN form, found {len(forms)}", source=source, line=1)
    return forms[0]


def loads_all(text: str, *, source: str | None = None) -> list[Any]:
    """Read every top-level EDN form in ``text``."""
    return _parse(text, source)[0]


# -- writer -------------------------------------------------------------------


def _dump_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_PLAIN_STR = re.compile(r'[^"\\\x00-\x1f]*\Z')
_KEYWORD_OK = re.compile(rf"[^{_DELIM}]+\Z")
_SYMBOL_OK = re.compile(rf"(?![-+]?\d)[^{_DELIM}#:@~^`'][^{_DELIM}]*\Z")


def dumps(v: Any) -> str:
    """One EDN form for ``v`` (see the module table for the mapping)."""
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Keyword):
        # Names with delimiters cannot be keywords: keep the text as a string.
        return ":" + v if _KEYWORD_OK.match(v) else _dump_str(v)
    if isinstance(v, Symbol):
        ok = _SYMBOL_OK.match(v) and v not in _CONSTANTS and not _FLOAT_RE.match(v)
        return str(v) if ok else _dump_str(v)
    if isinstance(v, str):
        return '"' + v + '"' if _PLAIN_STR.match(v) else _dump_str(v)
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        if math.isnan(v):
            return "##NaN"
        if math.isinf(v):
            return "##Inf" if v > 0 else "##-Inf"
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + " ".join(dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(dumps(k) + " " + dumps(x) for k, x in v.items()) + "}"
    if isinstance(v, frozenset | set):
        items = [dumps(x) for x in v]
        items.sort()
        return "#{" + " ".join(items) + "}"
    if isinstance(v, Decimal):
        return str(v) + "M"
    if isinstance(v, Fraction):
        return f"{v.numerator}/{v.denominator}"
    raise TypeError(f"cannot write a {type(v).__name__} as EDN: {v!r}")


# -- histories ----------------------------------------------------------------

_OP_KEYS = ("index", "time", "type", "process", "f", "value")


def op_to_edn(op: Op) -> str:
    """One EDN op map (Jepsen's key order) for ``op``, without a newline."""
    parts = [
        f":index {op.index}",
        f":time {op.time}",
        f":type :{op.type}",
        f":process {op.process}"
        if isinstance(op.process, int)
        else f":process {dumps(Keyword(op.process))}",
        f":f {dumps(op.f if isinstance(op.f, Keyword) else Keyword(op.f))}",
        f":value {dumps(op.value)}",
    ]
    if op.node is not None:
        parts.append(f":node {dumps(op.node)}")
    if op.error is not None:
        parts.append(f":error {dumps(op.error)}")
    if op.extra:
        for k, x in op.extra.items():
            if k in _OP_KEYS or k in ("node", "error"):
                continue
            key = Keyword(k) if type(k) is str else k
            parts.append(f"{dumps(key)} {dumps(x)}")
    return "{" + ", ".join(parts) + "}"


def write_edn_history(
    history: Iterable[Op], path: str | os.PathLike[str] | IO[str], *, vector: bool = False
) -> None:
    """Write ops as EDN op maps, one per line.

    By default as a stream of maps, like Jepsen's ``history.edn``; with
    ``vector=True`` wrapped in ``[`` ``]``, like the Knossos example files."""
    if isinstance(path, str | os.PathLike):
        with open(path, "w", encoding="utf-8") as fh:
            write_edn_history(history, fh, vector=vector)
        return
    first = True
    for op in history:
        if vector:
            path.write("[" if first else " ")
        path.write(op_to_edn(op))
        path.write("\n")
        first = False
    if vector:
        path.write("[]\n" if first else "]\n")


def iter_edn_ops(text: str, *, source: str | None = None) -> Iterator[tuple[int, Op]]:
    """(offset, op) for every op map in ``text`` (a collection of maps or a stream).

    ``offset`` is where the op map starts in ``text``.  Ops keep the
    ``:index`` they carry (-1 when absent)."""
    forms, top_pos, inner_pos = _parse(text, source)
    if inner_pos is not None:
        elems: list[Any] = forms[0]
        positions = inner_pos
    else:
        elems = forms
        positions = top_pos
    make = _history.op_from_mapping
    for i, d in enumerate(elems):
        if type(d) is not dict:
            raise EdnError(
                f"element {i} is not an op map: {_preview(d)}",
                source=source,
                line=_line_of(text, positions[i]),
            )
        try:
            op = make(d, -1)
        except HistoryError as e:
            raise EdnError(e.message, source=source, line=_line_of(text, positions[i])) from None
        yield positions[i], op


class _Fallback(Exception):
    """The fast reader met something only the general parser handles."""


_RECORD_TAG = "#jepsen.history.Op{"
_COMMENT = re.compile(r";[^\n]*")
_NOT_SYMBOL_START = frozenset("@~^`'")


def _fast_op_maps(text: str) -> list[dict[Any, Any]] | None:
    """The op maps of a plain history, or None when the general parser must run.

    Plain means: no comments, escapes, characters, sets, tags other than
    ``#jepsen.history.Op``, lists only around the whole history.  It splits
    the text on ``"`` and whitespace and converts the tokens through a cache
    (C speed) instead of running a regular expression per token, and builds
    flat op maps with one ``dict(zip())``.  It never reports errors:
    anything odd returns None and the general parser, which knows lines,
    decides."""
    if "\\" in text:
        return None
    parts = text.split('"')
    if not len(parts) % 2:
        return None  # an unterminated string
    code = ' " '.join(parts[0::2])
    if _RECORD_TAG in code:  # in code only: a string may hold the same text
        code = code.replace(_RECORD_TAG, "{")
    if ";" in code:
        # Comments go.  A comment holding a '"' threw the string split off;
        # the placeholder after it goes with the comment, so the counts of
        # placeholders and strings differ below and the parser takes over.
        code = _COMMENT.sub("", code)
    if "#" in code:
        return None
    if "(" in code or ")" in code:
        stripped = code.strip()
        if code.count("(") != 1 or code.count(")") != 1:
            return None
        if not (stripped.startswith("(") and stripped.endswith(")")):
            return None
        code = code.replace("(", "[").replace(")", "]")
    code = (
        code.replace(",", " ")
        .replace("[", " [ ")
        .replace("]", " ] ")
        .replace("{", " { ")
        .replace("}", " } ")
    )
    toks = code.split()
    missing = _MISSING
    # Known tokens convert in C through the cache; the rest (numbers, new
    # keywords, strings) one by one below, in order.
    cache: dict[str, Any] = {
        "nil": None,
        "true": True,
        "false": False,
        "[": _OPEN_V,
        "]": _CLOSE_V,
        "{": _OPEN_M,
        "}": _CLOSE_M,
    }
    distinct = list(set(toks))
    for t in compress(distinct, map(str.startswith, distinct, repeat(":"))):
        if len(t) > 1 and t[1] != ":":
            cache[t] = Keyword(t[1:])
    cache['"'] = _STRING
    vals = list(map(cache.get, toks, repeat(missing)))
    # Strings, in order, where their placeholders are.
    positions = range(len(toks))
    spos = list(compress(positions, map(is_, vals, repeat(_STRING))))
    strings = parts[1::2]
    if len(spos) != len(strings):  # a '"' inside a comment
        return None
    deque(map(setitem, repeat(vals), spos, strings), maxlen=0)  # vals[p] = s, in C
    # The rest: numbers (converted in one map(int) when they all are ints),
    # symbols and odd tokens one by one.
    mpos = list(compress(positions, map(is_, vals, repeat(missing))))
    mtoks = list(map(toks.__getitem__, mpos))
    try:
        if "_" in "".join(mtoks):
            return None  # int() would read 1_000; EDN does not
        converted: list[Any] = list(map(int, mtoks))
    except ValueError:
        converted = []
        for tok in mtoks:
            c = tok[0]
            if c in _NOT_SYMBOL_START or c == ":":
                return None
            try:
                converted.append(int(tok))
            except ValueError:
                try:
                    converted.append(_atom(tok, "", 0, None))
                except EdnError:
                    return None
    if len(converted) != len(mpos):  # pragma: no cover - one value per token
        return None
    deque(map(setitem, repeat(vals), mpos, converted), maxlen=0)

    def value(i: int) -> tuple[Any, int]:
        t = vals[i]
        if t is _OPEN_V:
            out: list[Any] = []
            i += 1
            while vals[i] is not _CLOSE_V:
                v, i = value(i)
                out.append(v)
            return out, i + 1
        if t is _OPEN_M:
            items: list[Any] = []
            i += 1
            while vals[i] is not _CLOSE_M:
                v, i = value(i)
                items.append(v)
            if len(items) % 2:
                raise _Fallback
            return _make_map(items, "", 0, None), i + 1
        if t is _CLOSE_V or t is _CLOSE_M:
            raise _Fallback
        return t, i + 1

    n = len(toks)
    i, end = 0, n
    if n and toks[0] == "[":
        if toks[-1] != "]":
            return None
        i, end = 1, n - 1
    quick = _flat_maps(vals[i:end], toks[i:end])
    if quick is not None:
        return quick
    maps: list[dict[Any, Any]] = []
    append = maps.append
    index = toks.index
    try:
        while i < end:
            if vals[i] is not _OPEN_M:
                return None
            j = index("}", i)
            flat = toks[i + 1 : j]
            if "{" in flat:
                d, i = value(i)
                append(d)
                continue
            if "[" in flat:
                # Collapse vectors of scalars (cas [1 4], txn micro-ops need value()).
                body = vals[i + 1 : j]
                k = 0
                while "[" in flat:
                    p = flat.index("[")
                    q = flat.index("]", p)
                    if "[" in flat[p + 1 : q]:
                        break  # nested vectors
                    body[k + p : k + q + 1] = [body[k + p + 1 : k + q]]
                    k += p + 1
                    flat = flat[q + 1 :]
                if "[" in flat or "]" in flat or len(body) % 2:
                    d, i = value(i)
                    append(d)
                    continue
                append(dict(zip(body[0::2], body[1::2], strict=True)))
                i = j + 1
                continue
            if "]" in flat or len(flat) % 2:
                return None
            append(dict(zip(vals[i + 1 : j : 2], vals[i + 2 : j : 2], strict=True)))
            i = j + 1
        if i != end:
            return None
    except (_Fallback, IndexError, ValueError, TypeError, EdnError):
        return None
    return maps


def _alternate(opens: list[int], closes: list[int]) -> bool:
    """True when opens[0] < closes[0] < opens[1] < closes[1] < ... (no nesting)."""
    return (
        len(opens) == len(closes)
        and all(map(lt, opens, closes))
        and all(map(lt, closes, opens[1:]))
    )


def _flat_maps(vals: list[Any], toks: list[str]) -> list[dict[Any, Any]] | None:
    """Op maps from converted tokens when no map nests and no vector nests.

    ``vals[i]`` is the value of token ``toks[i]``.  Everything runs through
    C-level ``map``/``compress``/``dict(zip())`` except one step per
    vector; None when the shape is anything else."""
    # One pass finds every bracket; the per-kind positions come from that short list.
    bpos = list(compress(range(len(toks)), map(_BRACKET_TOKENS.__contains__, toks)))
    kinds = [toks[p] for p in bpos]
    mo = list(compress(bpos, map(eq, kinds, repeat("{"))))
    mc = list(compress(bpos, map(eq, kinds, repeat("}"))))
    vo = list(compress(bpos, map(eq, kinds, repeat("["))))
    vc = list(compress(bpos, map(eq, kinds, repeat("]"))))
    if not _alternate(vo, vc) or not _alternate(mo, mc):
        return None
    if vo:
        # A map bracket inside a vector: not flat.
        if list(map(bisect_left, repeat(mo), vo)) != list(map(bisect_left, repeat(mo), vc)):
            return None
        if list(map(bisect_left, repeat(mc), vo)) != list(map(bisect_left, repeat(mc), vc)):
            return None
        out: list[Any] = []
        prev = 0
        for o, c in zip(vo, vc, strict=True):
            out.extend(vals[prev:o])
            out.append(vals[o + 1 : c])
            prev = c + 1
        out.extend(vals[prev:])
        vals = out
        # Each vector o..c became one element: later positions move back by c - o.
        removed = [0, *accumulate(map(sub, vc, vo))]
        mo = list(map(sub, mo, map(getitem, repeat(removed), map(bisect_left, repeat(vo), mo))))
        mc = list(map(sub, mc, map(getitem, repeat(removed), map(bisect_left, repeat(vo), mc))))
    if mo and (mo[0] != 0 or mc[-1] != len(vals) - 1):
        return None
    if sum(mc) - sum(mo) + len(mo) != len(vals):
        return None  # something between two maps
    if not all(map(and_, map(sub, mc, mo), repeat(1))):
        return None  # a map with an odd number of forms
    keys = map(getitem, repeat(vals), map(slice, map(add, mo, repeat(1)), mc, repeat(2)))
    values = map(getitem, repeat(vals), map(slice, map(add, mo, repeat(2)), mc, repeat(2)))
    try:
        return list(map(dict, map(zip, keys, values)))
    except TypeError:
        return None  # an unhashable key


_BRACKET_TOKENS = frozenset("[]{}")


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_MISSING: Any = _Marker("missing")
_STRING: Any = _Marker("string")
_OPEN_V: Any = _Marker("[")
_CLOSE_V: Any = _Marker("]")
_OPEN_M: Any = _Marker("{")
_CLOSE_M: Any = _Marker("}")


# -- the JSON path ------------------------------------------------------------
#
# A plain history is rewritten into JSON text with C-level str passes and
# decoded by one orjson call, which returns the op maps as dicts.  The
# rewriting:
#
# * strings stay where they are when their text cannot be mistaken for code
#   (no whitespace, brackets, ':' ...); otherwise they are cut out (one
#   regular-expression split that also drops comments) and put back at the end;
# * keywords, in *runs*: the keywords next to each other, with the separators
#   between them and around them (``, :type :invoke, :process ``, or
#   ``}\n {:process `` with the op before).  Clojure's printer writes
#   ``{:a 1, :b [:x :y]}``: a comma between map entries and none inside
#   vectors.  So a keyword right after ``{`` or after a separator holding a
#   comma is taken for a map key and becomes ``"a":``; any other keyword is a
#   value and becomes the marked string ``"\x7fx"``.  A run is rendered once
#   and replaced everywhere with one ``str.replace`` when it comes again
#   soon (a Jepsen history has a dozen distinct runs), where it stands
#   otherwise (``_keyword_runs``);
# * then the remaining separators become ',', ``nil`` ``null``, ``(`` ``[``.
#   Maps are JSON objects, vectors and lists arrays.
#
# The key guess needs no trust.  Each EDN token becomes one JSON token (a
# keyword one string, ``nil`` ``null``, a number itself ...) in the same
# order, separators become ',' or vanish, and outside strings the JSON text
# has a ':' only after an emitted key (each ':' of the EDN code starts a
# keyword).  JSON allows ``"name":`` exactly at the key positions of an
# object: an object is ``{key:value,key:value}`` and an array
# ``[value,value]``.  So if orjson accepts the text, every emitted key sits
# at a key position (one in an array, at the top, or right after another key
# is invalid), every key position holds an emitted key (a value there,
# followed by ',' or '}', is invalid: a key needs its ':'), and keys and
# values alternate: each object pairs the map's forms in order, as the
# general parser does (a repeated key keeps its first place and its last
# value in both).  A wrong guess, such as a map written without commas
# (``{:a 1 :b 2}``) or a vector with them (``[:a, :b]``), always gives
# invalid JSON, and the reader falls back.  The same holds however a run is
# matched elsewhere: whatever role a replaced keyword gets there, orjson
# checks it.
#
# What comes back differs from the general parser's maps in one documented
# way only (:func:`_json_op_maps`): the op fields' keys are plain ``str``,
# and keyword values of ``:type``, ``:f``, ``:process`` and ``:node`` of an
# op are plain ``str`` (the history keeps them so anyway: ``Keyword`` is a
# ``str`` equal to, and hashed like, its name); runs render those values
# unmarked.  So most histories come back from orjson with no mark left, and
# nothing else is done to them.  Other keys (``Keyword``, so that writing the
# history back keeps ``:key``) and the remaining marks are put right
# afterwards, in only the ops and values that hold them (``_restore``).
# When a map sits inside an op, its ``:type`` (say) must stay a keyword:
# then the text is rewritten again without plain values.
#
# Anything else (symbols, characters, sets, tags other than the Op record,
# ratios, ``N``/``M``, ``#_``, mismatched brackets, maps with keys that are
# not keywords, integers JSON readers turn into floats) makes the text
# invalid JSON or is caught by a check, and the caller falls back to the
# parsers above, which also report every error.

_T = TypeVar("_T")

_JSON_MARK = "\x7f"  # raw DEL: allowed in JSON strings; refused anywhere in the input
_JSON_COLON = "\x01"  # a JSON ':' while rewriting (EDN ':' starts keywords); refused too
_JSON_WS = str.maketrans("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", " " * 9)  # commas stay
_JSON_SEPARATORS = str.maketrans(" " + _JSON_COLON, ",:")
_JSON_OTHER_SPACE = re.compile(r"[^\S ]")  # whitespace for the parser, not for JSON
_JSON_DIGITS = str.maketrans("123456789", "000000000")
_JSON_LONG_NUMBER = "0" * 19  # 19 digits may exceed 64 bits: orjson would give a float
_JSON_BIG_INT = re.compile(r"(?<![\w.])[-+]?\d{19}")  # ... when a number starts so
_JSON_NOT_BRACKET = bytes(c for c in range(256) if c not in b"()[]{}")
_JSON_NULL_TOKEN = re.compile(r"(?<![^\s,\[\](){}])null(?![^\s,\[\](){}])")
# A keyword's name: up to the next delimiter.  ':' ends it too, and then the
# keyword is refused (:a:b is one keyword for EDN).
_JSON_NAME = re.compile(r'[^\s,\[\](){}:"\x00\x01]+')
_JSON_CONSTANTS = (("nil", "null"), ("true", "true"), ("false", "false"))
_JSON_AFTER_WORD = frozenset(' ,[]{}"\x00')
# nil where no keyword run took it (in vectors, say), once separators are commas.
_JSON_NILS = (
    (",nil,", ",null,"),
    (",nil,", ",null,"),  # again for nil,nil
    ("[nil,", "[null,"),
    (",nil]", ",null]"),
    ("[nil]", "[null]"),
    (",nil}", ",null}"),
    (":nil,", ":null,"),
    (":nil}", ":null}"),
)
# Keyword runs replaced everywhere at once (each takes one pass over the text)
# when they come again within _JSON_NEAR characters; the rest where they stand.
_JSON_MAX_RUNS = 48
_JSON_NEAR = 16384
_JSON_LOCAL_RUNS = 4096  # at least; more in long texts (one per 512 characters)
# A string body that can stay in the text: nothing the rewriting touches.
_JSON_UNSAFE_BODY = re.compile(r"[\s,\[\](){}:;#\\]")
_JSON_STRING_OR_COMMENT = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"|;[^\n]*')
# JSON joins surrogate pairs (EDN does not) and \u007f would forge a marker.
_JSON_ODD_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|007[fF])")
# The op fields (jepsy.history's); their keys come back as plain str.
_OP_FIELDS = frozenset(("index", "time", "type", "process", "f", "value", "node", "error"))
# Op fields whose keyword values come back as plain str (Op keeps them so).
_PLAIN_VALUE_FIELDS = frozenset(("type", "f", "process", "node"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not EDN: {name}")


_json_loads: Callable[[str], Any]
try:  # orjson is a dependency; json (with NaN/Infinity refused) is the spare
    import orjson

    _json_loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment

    def _json_loads(s: str) -> Any:
        return json.loads(s, parse_constant=_reject_constant)


class _JsonText:
    """EDN rewritten as JSON: the code, the strings cut out of it, and facts about it."""

    __slots__ = ("bodies", "code", "keys", "maps", "marked", "marked_after", "plain")

    def __init__(
        self,
        code: str,
        bodies: list[str] | None,
        maps: int,
        plain: bool,
        keys: set[str],
        marked: set[str],
        marked_after: set[str],
    ) -> None:
        self.code = code  # JSON, with "\x00" where a string of ``bodies`` goes
        self.bodies = bodies  # None: the strings stayed in the code
        self.maps = maps  # how many maps (JSON objects) there are
        self.plain = plain  # whether some keyword value was made a plain string
        self.keys = keys  # the names of all map keys, inner maps' too
        self.marked = marked  # the names of the keywords left marked
        self.marked_after = marked_after  # the keys those follow ("": in a vector ...)

    def text(self, *, tidy: bool = False) -> str:
        """The JSON text; ``tidy`` drops the separators JSON refuses and EDN allows."""
        code = _json_tidy(self.code) if tidy else self.code
        bodies = self.bodies
        if bodies is None:
            return code
        segs = code.split("\x00")
        out: list[str] = [""] * (2 * len(bodies) + 1)
        out[0::2] = segs
        out[1::2] = bodies
        return '"'.join(out)

    def joined(self, other: _JsonText) -> _JsonText:
        """The JSON of this text followed by ``other``'s, as one array: the
        ops of both in order (each is an array of top-level forms)."""
        bodies = None
        if self.bodies is not None or other.bodies is not None:
            # A text without bodies has no placeholder in its code.
            bodies = (self.bodies or []) + (other.bodies or [])
        return _JsonText(
            self.code[:-1] + "," + other.code[1:],
            bodies,
            self.maps + other.maps,
            self.plain or other.plain,
            self.keys | other.keys,
            self.marked | other.marked,
            self.marked_after | other.marked_after,
        )


PARALLEL_MIN_CHARS = 4_000_000
"""From this size on, a stream of op maps is rewritten in two halves at
once, the second in a forked child (about 10 MB of JSON comes back)."""
_LEADING_SPACE = re.compile(r"[\s,]*")


def _edn_as_json_parallel(text: str) -> _JsonText | None:
    """:func:`_edn_as_json` (``plain=True``) of a long stream of op maps,
    each half rewritten by one core; None when the halves are not both
    taken (the caller then rewrites the whole text in this process).

    The text is cut at a line break before ``{``.  The two results joined
    are the whole text's: every EDN token becomes one JSON token in order
    either way, and the line break at the cut, a separator, becomes the ','
    between the halves.  If the cut is not between two forms of an array
    (inside a string, a key before its value ...), a half is refused or the
    joined text is not JSON (a ',' after a key's ':' or before an object's
    key is invalid), and the caller's decoder refuses it."""
    if len(text) < PARALLEL_MIN_CHARS or CPUS < 2 or not can_fork():
        return None
    first = _LEADING_SPACE.match(text)
    if first is None or text[first.end() : first.end() + 1] not in ("{", "#"):
        return None  # not a stream of maps (a vector of them, say)
    cut = text.find("\n{", len(text) // 2)
    if cut < 0:
        return None
    child = fork_call(_second_half_as_json, text, cut + 1)
    try:
        head = _edn_as_json(text[: cut + 1], plain=True)
        tail = child.result()
    finally:
        child.cancel()
    if head is None or tail is None:
        return None
    return head.joined(tail)


def _second_half_as_json(text: str, start: int) -> _JsonText | None:  # pragma: no cover - child
    return _edn_as_json(text[start:], plain=True)


def _edn_as_json(text: str, *, plain: bool) -> _JsonText | None:
    """``text`` (EDN) as JSON text in the form above, or None.

    With ``plain``, keyword values of the op fields Op keeps as plain str
    are plain JSON strings; that is right only when no map nests in another
    one, which the caller checks (the number of maps against the number of
    ops)."""
    if _JSON_MARK in text or "\x00" in text or _JSON_COLON in text:
        return None
    bodies: list[str] | None = None  # strings cut out of the text, in order
    if "\\" not in text and ";" not in text:
        parts = text.split('"')
        if not len(parts) % 2:
            return None  # an unterminated string
        if len(parts) > 1 and _JSON_UNSAFE_BODY.search("".join(parts[1::2])):
            parts = []
    else:
        parts = []
    if parts:
        code = text
    else:
        parts = _JSON_STRING_OR_COMMENT.split(text)
        found = parts[1::2]
        codes = parts[0::2]
        if None in found:  # comments: drop them
            bodies = []
            merged = [codes[0]]
            for body, after in zip(found, codes[1:], strict=True):
                if body is None:
                    merged[-1] += " " + after
                else:
                    bodies.append(body)
                    merged.append(after)
            codes = merged
        else:
            bodies = found
        code = "\x00".join(codes)  # as glued to its neighbours as the string was
        if '"' in code or "\\" in code:
            return None  # an unterminated string or a character literal
        if "\\" in "".join(bodies) and _JSON_ODD_ESCAPE.search("".join(bodies)):
            return None
    if "#" in code:
        if _RECORD_TAG in code:
            code = code.replace(_RECORD_TAG, "{")
        if "#" in code:
            return None
    code = code.translate(_JSON_WS)
    if not code.isascii() and _JSON_OTHER_SPACE.search(code):
        return None  # e.g. a no-break space: the parser splits there, JSON would not
    if _JSON_LONG_NUMBER in code.translate(_JSON_DIGITS) and _JSON_BIG_INT.search(code):
        return None  # (19 digits after a '.' are a float's, no harm)
    if "null" in code and _JSON_NULL_TOKEN.search(code):
        return None  # a symbol in EDN, null in JSON
    if "(" in code or ")" in code:
        # Brackets must pair up: JSON would not see (1 2] (both are arrays).
        b = code.encode("utf-8", "surrogatepass").translate(None, _JSON_NOT_BRACKET)
        while b:
            shorter = b.replace(b"[]", b"").replace(b"{}", b"").replace(b"()", b"")
            if len(shorter) == len(b):
                return None
            b = shorter
        code = code.replace("(", "[").replace(")", "]")
    code = code.strip(" ,")
    if code[-1:] == "]":  # separators before a closing bracket are nothing to JSON
        code = code[:-1].rstrip(" ,") + "]"
    code = "[" + code + "]"
    used_plain = False
    keys: set[str] = set()
    marked: set[str] = set()
    marked_after: set[str] = set()
    if ":" in code:
        runs = _keyword_runs(code, plain, keys, marked, marked_after)
        if runs is None:
            return None
        code, used_plain = runs
    code = code.translate(_JSON_SEPARATORS)
    if "nil" in code:
        for old, new in _JSON_NILS:
            code = code.replace(old, new)
    return _JsonText(code, bodies, code.count("{"), used_plain, keys, marked, marked_after)


def _json_tidy(js: str) -> str:
    """Separators JSON refuses and EDN allows (``[ 1]``, ``{:a 1, }``, runs of them) gone."""
    while ",," in js:
        js = js.replace(",,", ",")
    return (
        js.replace("[,", "[")
        .replace(",]", "]")
        .replace("{,", "{")
        .replace(",}", "}")
        .replace(":,", ":")
    )


def _keyword_runs(
    code: str, plain: bool, keys: set[str], marked: set[str], marked_after: set[str]
) -> tuple[str, bool] | None:
    """``code`` with every keyword rendered for JSON (see the comment block above).

    Finds the first keyword left, takes the run of keywords around it (with
    the separators between them, and a ``nil``/``true``/``false`` value of
    a key) and renders it.  A run that comes again soon is replaced
    everywhere at once: Jepsen histories have a few distinct runs, such as
    ``, :type :invoke, :process ``, so a handful of C-level passes convert
    them all.  Other runs are replaced where they stand.  None when a ':'
    does not start a keyword the JSON path takes; else the code and whether
    some value was made a plain string.  The names of map keys go to
    ``keys``, those of keywords left marked to ``marked``, and the keys
    those come right after to ``marked_after`` ("" for none)."""
    name_at = _JSON_NAME.match
    colon = _JSON_COLON
    passes = 0
    used_plain = False
    parts: list[str] = []  # finished text
    done = 0  # code[:done] is in parts
    in_parts = False  # whether some run was replaced in parts only
    runs_here = 0  # runs replaced where they stand (each costs a few microseconds)
    budget = max(_JSON_LOCAL_RUNS, len(code) // 512)
    pos = code.find(":")
    while pos >= 0:
        # The left end: separators, and what is before them.
        start = pos
        while code[start - 1] == " ":
            start -= 1
        c = code[start - 1]
        field = ""  # the key whose value comes next
        local = False  # whether the run must be replaced here only
        if c == colon:
            # The value of a key rendered by an earlier run: "name"\x01
            field = code[code.rfind('"', 0, start - 2) + 1 : start - 2]
        if start - 1 < done:
            # What is before is finished (a run replaced where it stood ends
            # there): it still says key or value, and its text is out already.
            local = True
            if c == "," or c == "{":
                key, out = True, ""
            elif c == "[" or c == colon:
                key, out = False, ""
            elif start < pos:
                key, out = False, ","
            else:
                return None  # glued to the token before it (x:y)
        elif c == "{" and start == pos:
            start -= 1
            out = "{"
            key = True
            # The op before, with what separates them ("}\n {" in Knossos
            # files): one JSON ',' for them here, no pass for them later.
            # The first op takes the '[' before it (a run of its own).
            j = start
            while code[j - 1] == " " or code[j - 1] == ",":
                j -= 1
            if code[j - 1] == "}":
                if j - 1 >= done:
                    start, out = j - 1, "},{"
                elif j >= done:  # that '}' is finished already
                    start, out = j, ",{"
            elif code[j - 1] == "[" and j - 1 >= done:
                start, out = j - 1, "[{"
        elif c == "," or c == "{":
            start -= 1
            out = c
            key = True
        elif c == "[":
            start -= 1
            out = "["
            key = False
        elif c == colon:
            start -= 1
            out = colon
            key = False
        elif start < pos:
            # A value after a token: the run starts with that token's last
            # character, so that it cannot match after a comma elsewhere.
            start -= 1
            out = c + ","
            key = False
        else:
            return None  # glued to the token before it (x:y)
        i = pos
        while True:
            m = name_at(code, i + 1)
            if m is None:
                return None  # a bare ':', '::' ...
            name = m.group()
            e = m.end()
            c = code[e]
            if c == ":":
                return None  # :a:b is one keyword for EDN
            if key:
                out += '"' + name + '"' + colon
                keys.add(name)
                j = e
                while code[j] == " " or code[j] == ",":
                    j += 1
                c = code[j]
                if c == ":":
                    field, key, i = name, False, j
                    continue
                if j == e:
                    if c not in '[{"\x00':
                        return None  # {:a} or the like: the parser explains
                    local = True  # no terminator: {:a[1]} here only, not {:ab 1}
                for word, value in _JSON_CONSTANTS:
                    if code.startswith(word, j) and code[j + len(word)] in _JSON_AFTER_WORD:
                        out += value
                        e = j + len(word)
                        c = code[e]
                        break
                else:
                    end = j  # a number, string, vector or map follows
                    break
            elif plain and field in _PLAIN_VALUE_FIELDS:
                out += '"' + name + '"'
                used_plain = True
            else:
                out += '"' + _JSON_MARK + name + '"'
                marked.add(name)
                marked_after.add(field)  # "": not right after a key (in a vector, say)
            # After a value: the terminator is part of the run, so that a
            # run never matches the start of a longer name elsewhere.
            field = ""
            if c == " " or c == ",":
                j = e
                while code[j] == " " or code[j] == ",":
                    j += 1
                if code[j] == ":":
                    key = "," in code[e:j]
                    out += ","
                    i = j
                    continue
                if code[j] in "]}":
                    out += code[j]
                    end = j + 1
                else:
                    # A space stays a space (a run after it is a value, as here).
                    out += "," if "," in code[e:j] else " "
                    end = j
            elif c in "]}":
                out += c
                end = e + 1
            else:  # [ { " (or a string cut out) at once: no terminator, so here only
                out += ","
                end = e
                local = True
            break
        run = code[start:end]
        parts.append(code[done:start])
        if not local and passes < _JSON_MAX_RUNS and code.find(run, end, end + _JSON_NEAR) >= 0:
            # It comes again soon: everywhere at once, one pass.  Nothing
            # before ``start`` can match (no ':' is left there) unless runs
            # were replaced in ``parts`` only: then that text goes first.
            passes += 1
            if in_parts:
                code = code[start:]
                start = 0
                in_parts = False
            code = code.replace(run, out)
            done = start
            pos = code.find(":", start + len(out))
        else:
            runs_here += 1
            if runs_here > budget:
                return None  # too varied for this path: the token path is faster
            parts.append(out)
            done = end
            in_parts = True
            pos = code.find(":", end)
    parts.append(code[done:])
    return "".join(parts), used_plain


def _json_op_maps(text: str, found: _JsonText | None = None) -> list[dict[Any, Any]] | None:
    """The op maps of ``text`` through the JSON rewriting, or None.

    Returns what the general parser would, except that op-field keys (index
    time type process f value node error) are plain ``str`` and so are
    keyword values of ``:type``, ``:f``, ``:process`` and ``:node`` in an op
    map; or None when the general parser must decide (it never reports
    errors itself).  ``found``: ``_edn_as_json(text, plain=True)``, when the
    caller has it already."""
    if found is None:
        found = _edn_as_json(text, plain=True)
    if found is None:
        return None
    elems = _json_decode(found)
    if elems is None:
        return None
    if found.plain and found.maps != len(elems):
        # A map inside an op: its :type (say) must keep its keyword.
        found = _edn_as_json(text, plain=False)
        if found is None:  # pragma: no cover - the same text was taken above
            return None
        elems = _json_decode(found)
        if elems is None:  # pragma: no cover - as above
            return None
    nested = found.maps != len(elems)
    if nested or _JSON_MARK in found.code or not found.keys <= _OP_FIELDS:
        try:
            _restore(elems, set().union(*elems), nested, found.marked, found.marked_after)
        except _Fallback:
            return None
    return elems


def _decoded(found: _JsonText, decode: Callable[[str], _T | None]) -> _T | None:
    """``decode`` of ``found``'s JSON, or, when that gives None, of the text
    tidied: perhaps only separators JSON refuses ([ 1], a comma before '}' ...)."""
    got = decode(found.text())
    return got if got is not None else decode(found.text(tidy=True))


def _json_loads_or_none(js: str) -> Any:
    try:
        return _json_loads(js)
    except ValueError:
        return None


def _json_decode(found: _JsonText) -> list[dict[Any, Any]] | None:
    """The op maps in ``found``, as orjson decodes them, or None."""
    top = _decoded(found, _json_loads_or_none)
    if top is None:
        return None
    elems = top[0] if len(top) == 1 and type(top[0]) is list else top
    if not all(map(is_, map(type, elems), repeat(dict))):
        return None  # not an op map: the parser names it
    return elems


def _restore(
    maps: list[dict[Any, Any]],
    keys: set[str],
    nested: bool,
    marked: set[str],
    marked_after: set[str],
) -> None:
    """Keywords back where the JSON path left marks or plain keys, in place.

    Other keys than the op fields become :class:`Keyword`, marked strings
    keywords (plain ``str`` for the fields that keep them so), and inner maps
    get keyword keys too; only ops and columns that can hold any of these
    are visited.  ``marked`` holds the names of all keywords left marked,
    ``marked_after`` the keys they come right after ("" when one is not)."""
    field = _OP_FIELDS.__contains__
    kws: dict[str, Keyword] = {}

    def kw(name: str) -> Keyword:
        k = kws.get(name)
        if k is None:
            if not _KEYWORD_OK.match(name):  # pragma: no cover - the rewriting ensures it
                raise _Fallback
            k = kws[name] = Keyword(name)
        return k

    # Every marked string maps to its keyword: one dict lookup each, and a
    # list of scalars (say [:r :x nil]) converts in one C-level map.
    marks: dict[Any, Any] = {_JSON_MARK + name: kw(name) for name in marked}
    get = marks.get

    def value(v: Any) -> Any:
        t = type(v)
        if t is list:
            if v and type(v[0]) in _CONTAINERS:
                return list(map(value, v))
            try:
                return list(map(get, v, v))
            except TypeError:  # a vector or map inside, later on
                return list(map(value, v))
        if t is dict:
            return {kw(k): value(x) for k, x in v.items()}
        if t is str:
            return get(v, v)
        return v

    n = len(maps)
    if not keys <= _OP_FIELDS:
        for p in compress(range(n), map(not_, map(_OP_FIELDS.issuperset, maps))):
            maps[p] = {(k if field(k) else kw(k)): x for k, x in maps[p].items()}
    inside = nested or "" in marked_after  # marks or maps inside vectors or maps
    for k in keys if inside else keys & marked_after:
        col: list[Any] = list(map(dict.get, maps, repeat(k)))
        kinds = set(map(type, col))
        plain = k in _PLAIN_VALUE_FIELDS
        # (Without inner maps, the plain fields' keywords were never marked.)
        if str in kinds and k in marked_after and (nested or not plain):
            where = list(compress(range(n), map(is_, map(type, col), repeat(str))))
            strs = map(col.__getitem__, where)
            for p in compress(where, map(str.startswith, strs, repeat(_JSON_MARK))):
                s = col[p]
                maps[p][k] = s[1:] if plain else get(s, s)
        if inside and not kinds.isdisjoint(_CONTAINERS):
            where = list(compress(range(n), map(_CONTAINERS.__contains__, map(type, col))))
            deque(
                map(
                    setitem,
                    map(maps.__getitem__, where),
                    repeat(k),
                    map(value, map(col.__getitem__, where)),
                ),
                maxlen=0,
            )


_CONTAINERS = frozenset((list, dict))


def read_edn_history(path: str | os.PathLike[str]) -> History:
    """Read and validate a Jepsen/Knossos EDN history file.

    Plain histories take a fast path; anything unusual, and every error,
    goes through the general parser, whose messages name the line."""
    src = os.fspath(path)
    with open(src, encoding="utf-8-sig") as fh:  # -sig: a BOM is not part of the text
        text = fh.read()
    # millions of new objects, no cycles: the collector only slows this down
    with _history.bulk_allocation():
        h = _read_fast(text, src)
    if h is not None:
        return h
    return _history.history_from_located(iter_edn_ops(text, source=src), src, text)


def _read_fast(text: str, src: str) -> History | None:
    """The history through the fast paths; None when the general parser must decide."""
    found = _edn_as_json_parallel(text) or _edn_as_json(text, plain=True)
    if (
        found is not None
        and found.maps
        and found.keys <= _OP_FIELDS
        and _JSON_MARK not in found.code
    ):
        # Op maps of the op fields only, no keyword left to restore and no
        # map inside an op: msgspec decodes and types the ops in one C call.
        decoded = _decoded(found, partial(_history.decode_json_ops, lines=False))
        if decoded is not None and len(decoded) == found.maps:
            h = _history.history_from_json_ops(decoded, src)
            if h is not None:
                return h
    maps = None if found is None else _json_op_maps(text, found)  # op maps only
    if maps is None:
        maps = _fast_op_maps(text)
        if maps is None or not all(map(is_, map(type, maps), repeat(dict))):
            return None
    # Columns straight from the dicts (no Op objects); None when anything is
    # off, and the op-by-op way below decides (it raises, naming the line).
    h = _history.history_from_op_dicts(maps, src)
    if h is not None:
        return h
    # Ops without an :index are renumbered by position when one lacks it;
    # when none has one, number them so at once (no copies later).
    has_index = any(map(dict.__contains__, maps, repeat("index")))
    default: Iterable[int] = repeat(-1) if has_index else range(len(maps))
    try:
        ops = list(map(_history.op_from_mapping, maps, default))
        return _history._validated(ops, lambda i: 0, src)
    except HistoryError:
        return None  # the general parser names the line
