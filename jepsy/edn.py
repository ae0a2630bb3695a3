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

1. the JSON path (``_json_op_maps``): about 20 C-level ``str`` passes
   rewrite the EDN into JSON (keywords become marked strings, maps marked
   arrays), one ``orjson.loads`` decodes it, and a few ``map`` passes turn
   the marks back into :class:`Keyword` and ``dict``.  It takes everything
   Jepsen, Knossos and jepsy write, comments, escapes and lists included
   (all 122 Knossos example files), and refuses symbols, characters, sets,
   other tags, ``N``/``M``/ratios and integers beyond 64 bits;
2. the older token path (``_fast_op_maps``), which splits on whitespace and
   converts tokens through a cache.

``bench/parse_history.py`` measures both formats.  Where the JSON path's
time goes for 100,000 ops (9.6 MB, 1.5 million tokens), in CPU seconds on
the shared 2-core development machine: rewriting 0.7 (the keyword step,
one ``str.replace`` per keyword occurrence, is 0.2 of it), ``orjson`` 0.15,
marks back to keywords and dicts 0.7, ``Op`` objects 0.3, validation 0.1.
The collector is off while reading (millions of new objects, no cycles).

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

import gc
import json
import math
import os
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from itertools import accumulate, compress, repeat
from operator import add, and_, eq, getitem, is_, lt, setitem, sub
from typing import IO, Any

from jepsy import history as _history
from jepsy.errors import HistoryError
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


def _positions(vals: list[Any], marker: Any) -> list[int]:
    return list(compress(range(len(vals)), map(is_, vals, repeat(marker))))


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
# A plain history is rewritten into JSON text with a few C-level str passes
# and decoded by one orjson call; a short structural pass then turns the
# marked JSON back into what the general parser returns.  The rewriting:
#
# * strings stay where they are when their text cannot be mistaken for code
#   (no whitespace, brackets, ':' ...); otherwise they are cut out (one
#   regular-expression split that also drops comments) and put back at the end;
# * separators (whitespace, commas) become single commas between tokens;
# * a keyword ``:name`` becomes the JSON string ``"\x7fname"``, a map ``{``
#   the array ``["\x7f", ...`` (marker first, then keys and values), ``nil``
#   ``null``; vectors and the lists around a whole history are arrays.
#
# Anything else (symbols, characters, sets, tags other than the Op record,
# ratios, ``N``/``M``, ``#_``, mismatched brackets, integers JSON readers turn
# into floats) makes the text invalid JSON or is caught by a check, and the
# caller falls back to the parsers above, which also report every error.

_JSON_MARK = "\x7f"  # raw DEL: allowed in JSON strings; refused anywhere in the input
_JSON_WS = str.maketrans(",\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", " " * 10)
_JSON_DIGITS = str.maketrans("123456789", "000000000")
_JSON_LONG_NUMBER = "0" * 19  # 19 digits may exceed 64 bits: orjson would give a float
_JSON_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
# A string body that can stay in the text: nothing the rewriting touches.
_JSON_UNSAFE_BODY = re.compile(r"[\s,\[\](){}:;#\\]")
_JSON_STRING_OR_COMMENT = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"|;[^\n]*')
# JSON joins surrogate pairs (EDN does not) and \u007f would forge a marker.
_JSON_ODD_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|007[fF])")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not EDN: {name}")


_json_loads: Callable[[str], Any]
try:  # orjson is a dependency; json (with NaN/Infinity refused) is the spare
    import orjson

    _json_loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment

    def _json_loads(s: str) -> Any:
        return json.loads(s, parse_constant=_reject_constant)


def _edn_as_json(text: str) -> str | None:
    """``text`` (EDN) as JSON text in the marked form above, or None."""
    if _JSON_MARK in text or "\x00" in text:
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
        code = " \x00 ".join(codes)
        if '"' in code or "\\" in code:
            return None  # an unterminated string or a character literal
        if "\\" in "".join(bodies) and _JSON_ODD_ESCAPE.search("".join(bodies)):
            return None
    if _RECORD_TAG in code:
        code = code.replace(_RECORD_TAG, "{")
    if "#" in code or "::" in code:
        return None
    code = code.translate(_JSON_WS)
    if "(" in code or ")" in code:
        stripped = code.strip(" ")
        if code.count("(") != 1 or code.count(")") != 1:
            return None
        if not (stripped.startswith("(") and stripped.endswith(")")):
            return None
        code = code.replace("(", "[").replace(")", "]")
    if _JSON_LONG_NUMBER in code.translate(_JSON_DIGITS):
        return None
    # Every token now ends before a space; closers get one of their own.
    code = "[" + code.replace("]", " ]").replace("}", " }") + " ]"
    b = code.encode().translate(None, _JSON_NOT_BRACKET)
    while b:  # brackets must pair up: JSON would not see {1 2] (both are arrays)
        shorter = b.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(b):
            return None
        b = shorter
    while "  " in code:
        code = code.replace("  ", " ")
    code = code.replace(" ", ",")
    if "null," in code and (",null," in code or "[null," in code or "{null," in code):
        return None  # a symbol in EDN, nil in JSON
    if ":" in code:
        # Every ':' must start a keyword; its name runs to the next comma.
        if code.count(":") != code.count(",:") + code.count("[:") + code.count("{:"):
            return None
        if ":," in code:
            return None  # a bare ':'
        pieces = code.split(":")
        pieces[1:] = map(str.replace, pieces[1:], repeat(","), repeat('",'), repeat(1))
        code = ('"' + _JSON_MARK).join(pieces)
    if "nil" in code:
        code = code.replace(",nil,", ",null,").replace(",nil,", ",null,")
        code = code.replace("[nil,", "[null,")
    code = code.replace("[,", "[").replace(",]", "]")
    open_map = '["' + _JSON_MARK + '",'
    code = code.replace("{,", open_map).replace(",}", "]").replace("{", open_map)
    if bodies is None:
        return code
    segs = code.split("\x00")
    if len(segs) != len(bodies) + 1:  # pragma: no cover - one placeholder per string
        return None
    out: list[str] = [""] * (2 * len(bodies) + 1)
    out[0::2] = segs
    out[1::2] = bodies
    return '"'.join(out)


def _json_op_maps(text: str) -> list[dict[Any, Any]] | None:
    """The op maps of ``text`` through the JSON rewriting, or None.

    Returns exactly what the general parser would, or None when it must
    decide (it never reports errors itself)."""
    js = _edn_as_json(text)
    if js is None:
        return None
    try:
        top = _json_loads(js)
    except ValueError:
        return None
    mark = _JSON_MARK
    single = len(top) == 1 and type(top[0]) is list and top[0][:1] != [mark]
    elems = top[0] if single else top
    cache: dict[str, Any] = {}  # JSON string -> Keyword, map marker or itself
    try:
        if not all(map(is_, map(type, elems), repeat(list))):
            return None
        maps = [_from_json(e, cache) for e in elems]
    except (_Fallback, EdnError):
        return None
    if not all(map(is_, map(type, maps), repeat(dict))):
        return None  # not an op map: the parser names it
    return maps


def _json_str(s: str) -> Any:
    """A decoded JSON string back to EDN: keyword, map marker or string."""
    if s[:1] != _JSON_MARK or s == _JSON_MARK:
        return s
    name = s[1:]
    if not _KEYWORD_OK.match(name):
        raise _Fallback  # a ':' glued to something else, e.g. :a[1]
    return Keyword(name)


def _from_json(v: list[Any], cache: dict[str, Any]) -> Any:
    """A decoded JSON array back to EDN: a vector, or a marked map."""
    get = cache.get
    out: list[Any] = []
    append = out.append
    for x in v:
        t = type(x)
        if t is str:
            y = get(x)
            if y is None:
                y = cache[x] = _json_str(x)
            append(y)
        elif t is list:
            append(_from_json(x, cache))
        else:
            append(x)
    if out and type(v[0]) is str and v[0] == _JSON_MARK:
        return _make_map(out[1:], "", 0, None)
    return out


def read_edn_history(path: str | os.PathLike[str]) -> History:
    """Read and validate a Jepsen/Knossos EDN history file.

    Plain histories take a fast path; anything unusual, and every error,
    goes through the general parser, whose messages name the line."""
    src = os.fspath(path)
    with open(src, encoding="utf-8-sig") as fh:  # -sig: a BOM is not part of the text
        text = fh.read()
    enabled = gc.isenabled()
    gc.disable()  # millions of new objects, no cycles: the collector only slows this down
    try:
        h = _read_fast(text, src)
    finally:
        if enabled:
            gc.enable()
    if h is not None:
        return h
    return _history.history_from_located(iter_edn_ops(text, source=src), src, text)


def _read_fast(text: str, src: str) -> History | None:
    """The history through the fast paths; None when the general parser must decide."""
    maps = _json_op_maps(text)
    if maps is None:
        maps = _fast_op_maps(text)
        if maps is None:
            return None
    if not all(map(is_, map(type, maps), repeat(dict))):
        return None
    # Ops without an :index are renumbered by position when one lacks it;
    # when none has one, number them so at once (no copies later).
    has_index = any(map(dict.__contains__, maps, repeat("index")))
    default: Iterable[int] = repeat(-1) if has_index else range(len(maps))
    try:
        ops = list(map(_history.op_from_mapping, maps, default))
        return _history._validated(ops, lambda i: 0, src)
    except HistoryError:
        return None  # the general parser names the line
