"""The EDN reader and writer (pure logic: no files)."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jepsy.edn import EdnError, Keyword, Symbol, dumps, loads, loads_all
from jepsy.errors import HistoryError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nil", None),
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("42N", 42),
        ("1.5", 1.5),
        ("-1e3", -1000.0),
        ("2.5M", Decimal("2.5")),
        ("1/3", Fraction(1, 3)),
        ("##Inf", math.inf),
        ("##-Inf", -math.inf),
        ('"a\\"b\\\\c\\n\\t\\u00e9"', 'a"b\\c\n\té'),
        ('"multi\nline"', "multi\nline"),
        ("\\a", "a"),
        ("\\newline", "\n"),
        ("\\space", " "),
        ("\\u00e9", "é"),
        (":read", "read"),
        (":jepsen.history/op", "jepsen.history/op"),
        ("foo", "foo"),
    ],
)
def test_scalars(text: str, expected: Any) -> None:
    v = loads(text)
    assert v == expected
    assert type(v) is type(expected) or isinstance(v, str)


def test_nan() -> None:
    assert math.isnan(loads("##NaN"))


def test_keywords_and_symbols_keep_their_kind() -> None:
    v = loads("[:read foo ns/bar]")
    assert v == ["read", "foo", "ns/bar"]
    assert type(v[0]) is Keyword
    assert type(v[1]) is Symbol
    assert {"read": 1}[v[0]] == 1  # hashes like the plain string


def test_collections() -> None:
    assert loads("[1 [2 3] (4 5)]") == [1, [2, 3], [4, 5]]
    assert loads("{:a 1, :b [1 2] :c {:d nil}}") == {"a": 1, "b": [1, 2], "c": {"d": None}}
    assert loads("#{1 2 3}") == frozenset({1, 2, 3})
    assert loads("#{[1 2] [3 4]}") == frozenset({(1, 2), (3, 4)})
    assert loads("{[1 2] :x}") == {(1, 2): "x"}
    assert loads("[]") == [] and loads("{}") == {} and loads("#{}") == frozenset()


def test_whitespace_comments_and_discard() -> None:
    text = """; a comment
    [1,,2 ; trailing comment
     #_ 3 #_[4 5] 6 #_ #_ 7 8 9]"""
    assert loads(text) == [1, 2, 6, 9]
    assert loads_all("#_ {:a 1} {:b 2} ;end") == [{"b": 2}]


def test_tagged_literals() -> None:
    assert loads('#inst "2020-01-01T00:00:00Z"') == "2020-01-01T00:00:00Z"
    assert loads('#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"').startswith("f81d")
    rec = loads("#jepsen.history.Op{:index 0, :type :invoke}")
    assert rec == {"index": 0, "type": "invoke"}
    assert loads("#my/tag [1 2]") == [1, 2]
    assert loads_all("#jepsen.history.Op{:a 1}\n#jepsen.history.Op{:a 2}") == [{"a": 1}, {"a": 2}]


def _err(text: str) -> EdnError:
    with pytest.raises(EdnError) as ei:
        loads_all(text, source="f.edn")
    assert isinstance(ei.value, HistoryError)
    return ei.value


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[1\n"abc', 2, "unterminated string"),
        ("[1 2\n 3}", 2, "'}' closes '[' opened at line 1"),
        ("[1]\n]", 2, "closes nothing"),
        ("[1\n{:a 1}", 2, "vector '[' opened at line 1 is not closed"),
        ("{:a 1\n :b}", 1, "even number of forms"),
        ("[#_]", 1, "#_ at line 1 is followed by ']'"),
        ("[#foo]", 1, "#foo at line 1 is followed by ']'"),
        ('\n\n"a\\qb"', 3, "unknown escape"),
        ("\\bogus", 1, "unknown character literal"),
        ("1.2.3", 1, "malformed number '1.2.3'"),
        ("1/0", 1, "malformed number"),
        ("#inst 5", 1, "#inst needs a string"),
        ("#:ns{:a 1}", 1, "unknown dispatch"),
        ("[1 @x]", 1, "unexpected character '@'"),
        ("#_", 1, "'#_' opened at line 1 is not closed"),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    e = _err(text)
    assert e.source == "f.edn"
    assert e.line == line
    assert words in e.message
    assert str(e).startswith(f"f.edn:{line}: ")


def test_loads_wants_one_form() -> None:
    with pytest.raises(EdnError, match="exactly one EDN form, found 2"):
        loads("1 2")


def test_dumps() -> None:
    v = {
        Keyword("f"): Keyword("cas"),
        Keyword("value"): [1, (2, None)],
        Keyword("s"): 'q"\n\x01',
        Keyword("set"): frozenset({2, 1}),
        Keyword("sym"): Symbol("x"),
        Keyword("fl"): [1.5, math.inf, -math.inf, Decimal("2.5"), Fraction(1, 2), True, False],
    }
    text = dumps(v)
    assert text.startswith('{:f :cas, :value [1 [2 nil]], :s "q\\"\\n\\u0001", :set #{1 2}')
    back = loads(text)
    assert back["value"] == [1, [2, None]]
    assert back["s"] == 'q"\n\x01'
    assert back["fl"] == [1.5, math.inf, -math.inf, Decimal("2.5"), Fraction(1, 2), True, False]
    assert type(back["f"]) is Keyword and type(back["sym"]) is Symbol
    assert dumps(math.nan) == "##NaN"
    with pytest.raises(TypeError, match="cannot write a object"):
        dumps(object())


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.from_regex(r"[a-z][a-z0-9?*!_-]{0,8}(/[a-z][a-z0-9-]{0,5})?", fullmatch=True).map(Keyword),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.from_regex(r"[a-z]{1,6}", fullmatch=True).map(Keyword), inner, max_size=4
        ),
    ),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and (type(a) is Keyword) == (type(b) is Keyword)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_round_trip(v: Any) -> None:
    assert _same(loads(dumps(v)), v)


# -- the fast path for plain histories ------------------------------------------

_hist_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.sampled_from('ab c,[]{}()#;:\n"\\'), max_size=6),
    st.sampled_from(["read", "write", "cas", "x", "a/b"]).map(Keyword),
)
_hist_values = st.recursive(
    _hist_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["k", "v"]).map(Keyword), inner, max_size=2),
    ),
    max_leaves=6,
)
_op_maps = st.lists(
    st.dictionaries(
        st.sampled_from(["index", "time", "type", "process", "f", "value", "node", "error"]).map(
            Keyword
        ),
        _hist_values,
        min_size=1,
        max_size=6,
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    _op_maps,
    st.sampled_from(["vector", "list", "stream", "records"]),
    st.booleans(),
    st.none() | st.text(alphabet='a ";{[', max_size=5),
)
def test_fast_path_agrees_with_the_parser(
    maps: list[Any], layout: str, commas: bool, comment: str | None
) -> None:
    from jepsy.edn import _fast_op_maps

    sep = ", " if commas else " "
    forms = ["{" + sep.join(f"{dumps(k)} {dumps(v)}" for k, v in m.items()) + "}" for m in maps]
    if layout == "records":
        forms = ["#jepsen.history.Op" + f for f in forms]
    # Comments (which may hold quotes and brackets) between the op maps.
    body = "\n".join(forms) if comment is None else f" ;{comment}\n".join(forms)
    text = {"vector": f"[{body}]", "list": f"({body})"}.get(layout, body)
    expected = loads_all(text)
    if layout in ("vector", "list"):
        expected = expected[0]
    fast = _fast_op_maps(text)
    if fast is not None:
        assert len(fast) == len(expected)
        for a, b in zip(fast, expected, strict=True):
            assert _same(a, b), (text, a, b)


@pytest.mark.parametrize(
    "text",
    [
        '[{:a 1} "x"]',
        "{:a 1} 5",
        "[{:a 1}] [{:b 2}]",
        "{:a [1 2} :b 3]",
        "{:a 1 :b}",
        '{:a 1} ; "q"\n{:b "s"}',
        "{:a #{1}}",
        "{:a \\c}",
        "{:a 1_000}",
        "{:a @b}",
        "{:a ::b}",
        "({:a 1}) ({:b 1})",
        '{:a "x}',
        "{[1 2] 3}",
    ],
)
def test_fast_path_leaves_odd_input_to_the_parser(text: str) -> None:
    from jepsy.edn import _fast_op_maps

    assert _fast_op_maps(text) is None


def test_fast_path_refuses_brackets_crossing() -> None:
    from jepsy.edn import _fast_op_maps

    for text in ("{:a [}]}", "{:a [{]}}", "[{:a [1 {:b 2} 3]}]"):
        fast = _fast_op_maps(text)
        if fast is not None:
            assert fast == loads_all(text)[0] if text.startswith("[{") else loads_all(text)


def test_names_that_cannot_be_written_as_names_become_strings() -> None:
    v = [Keyword("a b"), Keyword(""), Keyword("1x"), Symbol("nil"), Symbol("x y"), Symbol("-1")]
    assert dumps(v) == '["a b" "" :1x "nil" "x y" "-1"]'
    assert loads(dumps(v)) == ["a b", "", "1x", "nil", "x y", "-1"]


def test_fast_path_drops_comments() -> None:
    from jepsy.edn import _fast_op_maps

    text = '; a history\n[{:a 1} ; first\n {:b "s;t"}] ; end'
    assert _fast_op_maps(text) == [{"a": 1}, {"b": "s;t"}]


def test_fast_path_leaves_strings_alone() -> None:
    from jepsy.edn import _fast_op_maps

    text = '#jepsen.history.Op{:a "x #jepsen.history.Op{ y ; z [ ( #{"}'
    assert _fast_op_maps(text) == loads_all(text) == [{"a": "x #jepsen.history.Op{ y ; z [ ( #{"}]


# -- the JSON path: EDN rewritten to JSON and decoded at once --------------------


def _identical(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0, "a" not :a)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_identical, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            _identical(k, j) and _identical(a[k], b[j]) for k, j in zip(a, b, strict=True)
        )
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


def _general(text: str) -> list[Any]:
    forms, _pos, inner = _parse_all(text)
    return forms[0] if inner is not None else forms


def _parse_all(text: str) -> tuple[list[Any], list[int], list[int] | None]:
    from jepsy.edn import _parse

    return _parse(text, None)


_OP_FIELDS = ("index", "time", "type", "process", "f", "value", "node", "error")


def _as_json_path_gives(maps: list[Any]) -> list[Any]:
    """The general parser's op maps as the JSON path's contract returns them.

    Op-field keys are plain str, and so are keyword values of :type, :f,
    :process and :node in an op map; everything else is identical."""
    out: list[Any] = []
    for d in maps:
        if type(d) is not dict:
            out.append(d)
            continue
        e: dict[Any, Any] = {}
        for k, v in d.items():
            if type(k) is Keyword and k in _OP_FIELDS:
                k = str(k)
            if k in ("type", "f", "process", "node") and type(v) is Keyword:
                v = str(v)
            e[k] = v
        out.append(e)
    return out


def _agrees(text: str) -> bool:
    """The JSON path returns what the general parser does, or refuses; True if it answered."""
    from jepsy.edn import _json_op_maps

    fast = _json_op_maps(text)
    if fast is None:
        return False
    expected = _as_json_path_gives(_general(text))
    assert _identical(fast, expected), (text, fast, expected)
    return True


_json_strings = st.lists(
    st.sampled_from([*'ab :;,[]{}()#"\\nil\n\t\x7f\x01é', "nil", "null", "\\u", "\\ud83d"]),
    max_size=6,
).map("".join)
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # big ones too: 64-bit readers turn them into floats
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _json_strings,
    st.sampled_from(["read", "write", "cas", "x", "a/b", "nil", "null", "true", "a:b"]).map(
        Keyword
    ),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),  # written as vectors too
        st.frozensets(st.integers(-3, 3), max_size=3),
        st.dictionaries(st.sampled_from(["k", "v", "nil"]).map(Keyword), inner, max_size=2),
    ),
    max_leaves=8,
)
_json_op_maps_st = st.lists(
    st.dictionaries(
        st.sampled_from(["index", "time", "type", "process", "f", "value", "node", "error"]).map(
            Keyword
        ),
        _json_values,
        max_size=6,
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    _json_op_maps_st,
    st.sampled_from(["vector", "list", "stream", "records"]),
    st.sampled_from([" ", ", ", ",", "\n ", " ,\t", "  "]),
    st.sampled_from(["", " ", "\n", ",\n"]),
    st.none() | st.text(alphabet='a ";{[:', max_size=5),
)
def test_json_path_agrees_with_the_parser(
    maps: list[Any], layout: str, sep: str, pad: str, comment: str | None
) -> None:
    forms = [
        "{" + pad + sep.join(f"{dumps(k)} {dumps(v)}" for k, v in m.items()) + pad + "}"
        for m in maps
    ]
    if layout == "records":
        forms = ["#jepsen.history.Op" + f for f in forms]
    body = "\n".join(forms) if comment is None else f" ;{comment}\n".join(forms)
    text = {"vector": f"[{pad}{body}{pad}]", "list": f"({body})"}.get(layout, body)
    _agrees(text)


def test_json_path_reads_plain_histories() -> None:
    """The shapes Jepsen, Knossos and jepsy write take the JSON path, exactly."""
    texts = [
        '{:index 0, :time 5, :type :invoke, :process 0, :f :read, :value nil, :node "n1"}\n'
        '{:index 1, :time 9, :type :ok, :process 0, :f :read, :value [1 [2 nil]], :error "x y"}\n',
        "[{:process 0, :type :invoke, :f :cas, :value [1 4]}\n {:process :nemesis, :type :info,"
        " :f :start, :value nil}]",
        "; comment\n({:type :invoke,\n :f :txn,\n :value [[:read :x nil] [:write :y 2]],\n"
        " :process 3, :time 7686455705})",
        '#jepsen.history.Op{:index 0, :value {:a {}, :b [], :c [nil nil nil]}, :s "q\\"\\n"}',
        "[]",
        "",
        '[{:a -0, :b -0.0, :c 1e5, :d 1E-3, :e 123456789012345678, :f true, :g ""}]',
        '[{:a "é \\u00e9", :b :café, :c "#{} ; :x nil nul"}]',
        '[{:a "null", :b "a null here", :c :null, :d [:null "null"]}]',
    ]
    for text in texts:
        assert _agrees(text), text


@pytest.mark.parametrize(
    "text",
    [
        "[{:a 18446744073709551616}]",  # beyond 64 bits: must stay an exact int
        "[{:a -9223372036854775809}]",
        "[{:a 1234567890123456789012.5}]",
        "[{:a null}]",  # a symbol in EDN
        "[{:a [null]}]",
        "[{:a [1 null]}]",
        "[{null 1}]",
        "{:a null}",
        "[{:a {null 1}}]",
        "[{:a foo}]",
        "[{:a 1 :b}]",
        "[{:a 1]}",
        "[{:a [1 2}]}",
        "{:a 1]",
        "[{:a[1] 2}]",
        '[{:a"s" 2}]',
        "[{:a ::b}]",
        "[{:a :}]",
        "[{:a x:y}]",
        '[{:a "\\u007fx"}]',
        '[{:a "\\ud83d\\ude00"}]',
        '[{:a "\\ud800"}]',
        '[{:a "\\q"}]',
        "[{:a #{1 2}}]",
        "[{:a 1N}]",
        "[{:a 1.5M}]",
        "[{:a 1/2}]",
        "[{:a 007}]",
        "[{:a +1}]",
        "[{:a 1.}]",
        "[{:a .5}]",
        "[{:a 1e400}]",
        "[{:a \\c}]",
        "[{:a #_ 1 :b 2}]",
        "[{:a ##NaN}]",
        "[{:a 1}] [{:b 2}]",
        "[{:a 1} 5]",
        "[{:a 1} [1 2]]",
        "({:a (1 2)})",
        '[{:a "x}]',
        "[{[1 2] 3}]",
        "[{{:k 1} 3}]",
        "[{:a 1\u00a0:b 2}]",
        "[{:a\u00a0:b}]",
        "[{:a \x01}]",
        '[{:a "tab\tin"}]',
        "[{nil 1}]",
        "[{:a [nil]}]",
        "[{:a [nil, nil]}]",
        "[{:a {:b 1 :b 2}}]",
        "[{:a {[1] 2}}]",
    ],
)
def test_json_path_agrees_or_refuses(text: str) -> None:
    from jepsy.edn import _json_op_maps

    try:
        expected: Any = _general(text)
    except EdnError:
        assert _json_op_maps(text) is None  # errors are the general parser's
        return
    _agrees(text)
    assert type(expected) is list


def test_json_path_keeps_big_integers_exact() -> None:
    from jepsy.edn import _json_op_maps

    big = 2**64
    text = f"[{{:a {big} :b {-(2**63) - 1} :c [{big * big}]}}]"
    fast = _json_op_maps(text)
    got = fast if fast is not None else _general(text)
    assert got == [{"a": big, "b": -(2**63) - 1, "c": [big * big]}]
    assert all(type(x) is int for x in (got[0]["a"], got[0]["b"], got[0]["c"][0]))


# -- the JSON path's map keys: guessed, and checked by JSON itself ---------------


def _answers(text: str) -> list[Any]:
    """What the JSON path returns for ``text``; it must answer, and agree."""
    from jepsy.edn import _json_op_maps

    assert _agrees(text), text
    fast = _json_op_maps(text)
    assert fast is not None
    return fast


def test_json_path_keeps_key_and_value_kinds() -> None:
    """Op-field keys come back plain, other keys as keywords, keyword values as keywords."""
    (op,) = _answers(
        "{:index 0, :time 1, :type :invoke, :process :nemesis, :f :start, :node :n1,"
        ' :value {:type :x, :f "y", :n [:a {:b nil}]}, :error :boom, :extra :k}'
    )
    assert [type(k) for k in op] == [str] * 8 + [Keyword]
    assert [type(op[k]) for k in ("type", "process", "f", "node")] == [str] * 4
    assert type(op["error"]) is Keyword and type(op["extra"]) is Keyword
    inner = op["value"]
    assert all(type(k) is Keyword for k in inner)
    assert type(inner["type"]) is Keyword and type(inner["f"]) is str
    assert type(inner["n"][0]) is Keyword and type(next(iter(inner["n"][1]))) is Keyword


@pytest.mark.parametrize(
    "text",
    [
        # Jepsen's store: one op per line, records too
        '{:index 0, :time 5, :type :invoke, :process 0, :f :read, :value nil, :node "n1"}\n'
        '{:index 1, :time 9, :type :ok, :process 0, :f :read, :value 3, :node "n1"}\n',
        "#jepsen.history.Op{:index 0, :time 1, :type :info, :process :nemesis, :f :kill,"
        " :value [:n1 :n2]}\n#jepsen.history.Op{:index 1, :time 2, :type :info,"
        " :process :nemesis, :f :kill, :value {:n1 :killed, :n2 [1 nil true false -2.5e3]}}\n",
        # Knossos: a vector, ops on lines starting with a space; a list; pprint
        "[{:process 0, :type :invoke, :f :cas, :value [1 4]}\n {:process 0, :type :ok,"
        " :f :cas, :value [1 4]}]\n",
        "({:process 0, :type :invoke, :f :read, :value nil})",
        "; x\n[{:type :invoke,\n :f :txn,\n :value [[:read :x nil] [:write :y 2]],\n"
        " :process 3,\n :time 7686455705}\n{:type :ok, :f :txn, :value [], :process 3}]",
        # the empty history, in each layout
        "",
        "[]",
        "()",
        " \n ; nothing\n",
        # string bodies that look like code, escapes, comments between ops
        '[{:a "{:b 1, :c [2]} ; not a comment", :d "x:y", :e "\\"q\\" \\\\ \\n é"}'
        ' ; "{odd\n {:f ":g, #{} nil null"}]',
        # keyword values everywhere, names with odd (legal) characters
        "[{:f :a/b, :value [:x? :y! :*z* :a.b :-], :k :café}]",
        # a map entry split over commas, spaces and newlines; trailing commas
        "[{:a 1 ,\n :b 2,, :c [1 2] ,}\n, {:a 3, }]",
        "[{ :a 1, :b { :c 2, :d [ nil ] } }]",
        # a map inside an op whose keys look like op fields
        "[{:type :invoke, :process 0, :f :w, :value {:type :nested, :process :p}}]",
        # the same run before a number, a keyword and a string
        '[{:f :a, :value 1} {:f :a, :value :b} {:f :a, :value "c"} {:f :a, :value nil}]',
        # nil in vectors
        "[{:value [nil nil nil], :b [nil], :c [1 nil]}]",
        # tokens glued to keywords (brackets and quotes are delimiters)
        '[{:v [:x[:y]], :w [:x{:a 1}], :u [:x"s"], :t [[:a] {:b :c} [:d]]}]',
        "[{:a[1], :ab 2} {:a[2], :ab 3} {:a{:b 1}, :ab 4}]",
        '[{:a"x y", :b ["p q" :k"r s"], :c "t u"}\n]',  # strings cut out, glued
        # long fractions are floats (only long integers may leave 64 bits)
        "[{:a 0.0012039173078992923, :b -1.5e-300, :c 123456789012345678}]",
    ],
)
def test_json_path_takes_the_histories_jepsen_and_knossos_write(text: str) -> None:
    _answers(text)


@pytest.mark.parametrize(
    "text",
    [
        "[{:a 1 :b 2}]",  # no commas between entries: the guess fails
        "[{:a [:x, :y]}]",  # commas in a vector of keywords
        "[{:a {:b 1 :c 2}}]",
        '[{"a" 1}]',  # keys that are not keywords
        "[{1 2}]",
        "[{:a 1, 2 3}]",
        "[{nil 1}]",
        "[{[1] 2}]",
        "[{:a 1, :b}]",
        "[{:a}]",
        "[{:a, :b, :c 1}]",
        "[{:a :b, :c}]",
        "[{:a [1 2}]]",
        "({:a 1]",
        "[{:a 1} :b]",
        "[:a]",
        ":a",
        "[{:a:b 1}]",
        "[{: 1}]",
        "[{:a 1,: 2}]",
        "[{:a x:y}]",
        "[{:a 1}] [{:b 2}]",
        "[{:a null}]",
        "[{:a nilly}]",
        "[{:t [[:a]{:b :c}[:d]]}]",  # collections glued together: JSON needs commas
    ],
)
def test_json_path_refuses_or_agrees_on_tricky_input(text: str) -> None:
    from jepsy.edn import _json_op_maps

    try:
        _general(text)
    except EdnError:
        assert _json_op_maps(text) is None
        return
    _agrees(text)


def test_json_path_leaves_maps_without_commas_to_the_token_path() -> None:
    from jepsy.edn import _fast_op_maps, _json_op_maps

    text = "[{:process 22  :type :invoke, :f :read, :value 3}]"  # as in a Knossos file
    assert _json_op_maps(text) is None
    assert _fast_op_maps(text) == _general(text)


_kw_names = st.builds(str.__add__, st.sampled_from("abfitvxy"), st.text("ae09?!*/.-", max_size=4))
_plain_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**17), 10**17),  # 19 digits may go beyond 64 bits: refused
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(  # no surrogates: a file read as UTF-8 has none
            st.characters(blacklist_characters="\x00\x01\x7f", blacklist_categories=("Cs",)),
            max_size=6,
        ),
        _kw_names.map(Keyword),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(["type", "f", "process", "value"]), _kw_names).map(Keyword),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
_plain_ops = st.lists(
    st.dictionaries(
        st.one_of(
            st.sampled_from(["index", "time", "type", "process", "f", "value", "node", "error"]),
            _kw_names,
        ).map(Keyword),
        _plain_values,
        max_size=7,
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    _plain_ops,
    st.sampled_from(["vector", "list", "stream", "records"]),
    st.sampled_from(["\n", "\n ", " "]),
)
def test_json_path_answers_for_what_clojure_prints(
    maps: list[Any], layout: str, between: str
) -> None:
    """Maps printed as Clojure does (", " between entries) always take the JSON path."""
    forms = [dumps(m) for m in maps]
    if layout == "records":
        forms = ["#jepsen.history.Op" + f for f in forms]
    body = between.join(forms)
    text = {"vector": f"[{body}]", "list": f"({body})"}.get(layout, body)
    _answers(text)


@settings(max_examples=200, deadline=None)
@given(
    _plain_ops,
    st.sampled_from(["vector", "stream"]),
    st.lists(st.sampled_from([" ", ",", ", ", "\n", " ;c\n", "  "]), min_size=1, max_size=4),
    st.randoms(use_true_random=False),
)
def test_json_path_agrees_whatever_the_separators(
    maps: list[Any], layout: str, seps: list[str], rnd: Any
) -> None:
    """Each separator of the printed history replaced at random: agree, or refuse."""
    import re

    body = "\n".join(dumps(m) for m in maps)
    if layout == "vector":
        body = f"[{body}]"
    # Only separators outside strings are touched (strings are kept whole).
    parts = re.split(r'("(?:[^"\\]|\\.)*")', body)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"[ ,]+", lambda _m: rnd.choice(seps), parts[i])
    _agrees("".join(parts))


def test_json_path_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    """The json module stands in when orjson is not installed, with the same answers."""
    import json

    import jepsy.edn as edn

    def loads(s: str) -> Any:
        return json.loads(s, parse_constant=edn._reject_constant)

    monkeypatch.setattr(edn, "_json_loads", loads)
    _answers("[{:index 0, :time 1, :type :invoke, :process 0, :f :r, :value [1 nil]}]")
    _answers('{:a "x", :b {:c :d}}\n{:a 2.5, :k :v}')
    assert edn._json_op_maps("[{:a NaN}]") is None
    assert edn._json_op_maps("[{:a 18446744073709551616}]") is None


def test_json_path_survives_lone_surrogates() -> None:
    """Text that cannot be UTF-8 (only built in memory) falls back, or agrees."""
    for text in ('({:a "\ud800"})', '[{:a "\ud800"}]', "[{:a :\ud800}]"):
        _agrees(text)


_soup_tokens = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        "#jepsen.history.Op{",
        ":a",
        ":b",
        ":type",
        ":f",
        ":process",
        ":node",
        ":value",
        ":invoke",
        ":a/b",
        "nil",
        "true",
        "1",
        "-2.5",
        '"s"',
        '"x y"',
        '"n:1"',
        "null",
        "x",
        ":",
        "::a",
    ]
)
_soup_seps = st.sampled_from(["", " ", ",", ", ", "\n", "\n ", " ,", ";c\n"])


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_soup_tokens, _soup_seps), max_size=24))
def test_json_path_on_token_soup_agrees_or_refuses(tokens: list[tuple[str, str]]) -> None:
    """Any arrangement of tokens and separators: the parser's answer, or None."""
    from jepsy.edn import _json_op_maps

    text = "".join(t + s for t, s in tokens)
    try:
        _general(text)
    except EdnError:
        assert _json_op_maps(text) is None, text
        return
    _agrees(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from([":a", ":b", ":type", ":f", "1", "nil"]), _soup_seps)),
        min_size=1,
        max_size=8,
    ),
)
def test_json_path_on_maps_of_token_soup_agrees_or_refuses(
    maps: list[list[tuple[str, str]]],
) -> None:
    """Many maps of the same few tokens: runs replaced far from where they were found."""
    from jepsy.edn import _json_op_maps

    text = "[" + "\n ".join("{" + "".join(t + s for t, s in m) + "}" for m in maps) + "]"
    try:
        _general(text)
    except EdnError:
        assert _json_op_maps(text) is None, text
        return
    _agrees(text)
