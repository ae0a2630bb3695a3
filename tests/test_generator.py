"""jepsy.generator through the thread-free interpreter ``simulate``.

Ordering, timing (simulated ns), routing, determinism from the seed, reprs
and coercion.  Speed is measured by ``bench/generator_speed.py``, not here.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from jepsy import generator as gen
from jepsy.core import noop_test
from jepsy.errors import ConfigError
from jepsy.generator import (
    PENDING,
    Context,
    GeneratorError,
    Log,
    Sleep,
    ignores_events,
    simulate,
)
from jepsy.history import NEMESIS, History, Op

NS = 1_000_000_000
TEST = noop_test()


def invokes(ops: list[Op]) -> list[Op]:
    return [o for o in ops if o.is_invoke]


def fs(ops: list[Op]) -> list[str]:
    return [o.f for o in invokes(ops)]


R = {"f": "read"}
W = {"f": "write", "value": 1}


# -- Context -------------------------------------------------------------


def test_context_initial_and_helpers() -> None:
    ctx = Context.initial(3, seed=1)
    assert ctx.all_threads() == [0, 1, 2, NEMESIS]
    assert ctx.free_processes() == [0, 1, 2, NEMESIS]
    assert ctx.some_free_process() == 0
    busy = ctx.busy(0).busy(1)
    assert busy.some_free_process() == 2
    assert busy.free_processes() == [2, NEMESIS]
    assert busy.busy(2).some_free_process() == NEMESIS
    assert busy.busy(2).busy(NEMESIS).some_free_process() is None
    assert busy.free(0).some_free_process() == 0
    assert ctx.thread_of(NEMESIS) == NEMESIS
    assert ctx.process_of(2) == 2
    r = ctx.retire(1, concurrency=3)
    assert r.process_of(1) == 4 and r.thread_of(4) == 1 and r.thread_of(1) is None
    assert r.retire(NEMESIS, concurrency=3).process_of(NEMESIS) == NEMESIS
    assert ctx.with_time(5).time == 5 and ctx.time == 0
    with pytest.raises(GeneratorError, match="thread 9"):
        ctx.process_of(9)
    with pytest.raises(ConfigError, match="concurrency"):
        Context.initial(-1)


def test_context_restrict() -> None:
    ctx = Context.initial(3).busy(1)
    c = ctx.restrict(lambda t: isinstance(t, int))
    assert set(c.workers) == {0, 1, 2}
    assert c.free_threads == frozenset({0, 2})
    n = ctx.restrict([NEMESIS])
    assert dict(n.workers) == {NEMESIS: NEMESIS} and n.all_free()
    assert ctx.restrict([0, 1, 2, NEMESIS]) is ctx
    assert not c.all_free()


# -- coercion ------------------------------------------------------------


def test_dict_is_one_op_to_lowest_free_process() -> None:
    ops = simulate({"f": "read", "value": None, "key": 3})
    assert [(o.type, o.process, o.f) for o in ops] == [("invoke", 0, "read"), ("ok", 0, "read")]
    assert ops[0].extra == {"key": 3}
    assert ops[1].time == 10  # default latency


def test_list_runs_in_order_and_none_is_empty() -> None:
    assert fs(simulate([R, W, None, [R, [W]]])) == ["read", "write", "read", "write"]
    assert simulate(None) == []
    assert simulate([]) == []


def test_function_called_until_none() -> None:
    def two_args(test: Any, ctx: Context) -> dict[str, Any] | None:
        return {"f": "inc", "value": ctx.time} if ctx.time < 30 else None

    ops = simulate(gen.clients(two_args), concurrency=1)
    assert fs(ops) == ["inc"] * 3
    assert [o.value for o in invokes(ops)] == [0, 10, 20]

    calls = iter(range(3))

    def no_args() -> dict[str, Any] | None:
        i = next(calls, None)
        return None if i is None else {"f": "x", "value": i}

    assert [o.value for o in invokes(simulate(no_args, concurrency=1))] == [0, 1, 2]


def test_function_may_return_a_generator() -> None:
    def f(test: Any, ctx: Context) -> Any:
        return [R, W] if ctx.time == 0 else None

    assert fs(simulate(gen.clients(f), concurrency=1)) == ["read", "write"]


def test_op_passes_through() -> None:
    o = Op(process=2, type="invoke", f="cas", value=[1, 2])
    ops = simulate(o)
    assert ops[0].process == 2 and ops[0].value == [1, 2]
    # a process the context cannot see is replaced by a free one
    assert simulate(gen.nemesis(o))[0].process == NEMESIS


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"value": 1}, "string 'f'"),
        ({"f": "read", "type": "ok"}, "type 'ok'"),
        (Op(process=0, type="ok", f="read"), "type 'ok'"),
        ("read", "cannot use"),
        (iter([R]), "list"),
        (lambda a, b, c: None, "signature"),
    ],
)
def test_lift_rejects_bad_values(bad: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        gen.lift(bad)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gen.stagger(-1, R), "stagger"),
        (lambda: gen.delay(float("nan"), R), "delay"),
        (lambda: gen.limit(-1, R), "limit"),
        (lambda: gen.limit(1.5, R), "limit"),
        (lambda: gen.time_limit("3", R), "time_limit"),
        (lambda: gen.mix(R), "mix takes a list"),
        (lambda: gen.reserve(1, R), "reserve"),
        (lambda: gen.filter_(3, R), "predicate"),
        (lambda: gen.map_(None, R), "function"),
    ],
)
def test_bad_arguments_name_the_value(call: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()


# -- reprs ---------------------------------------------------------------


def reads(test: Any, ctx: Context) -> dict[str, Any]:
    return R


def is_read(op: Op) -> bool:
    return op.f == "read"


def test_reprs_read_like_the_call() -> None:
    g = gen.stagger(0.1, gen.mix([gen.repeat(R), reads]))
    assert repr(g) == "stagger(0.1, mix([repeat({'f': 'read'}), reads]))"
    assert (
        repr(gen.time_limit(30, gen.any_(gen.clients(gen.delay(0.5, gen.once(R))), None)))
        == "time_limit(30, any_(clients(delay(0.5, once({'f': 'read'}))), None))"
    )
    assert (
        repr(gen.phases([R], gen.limit(3, gen.repeat(2, W))))
        == "phases([{'f': 'read'}], limit(3, repeat(2, {'f': 'write', 'value': 1})))"
    )
    assert repr(gen.cycle(2, [gen.sleep(1), gen.log("hi")])) == "cycle(2, [sleep(1), log('hi')])"
    assert (
        repr(gen.reserve(2, R, 1, gen.each_thread(None), None))
        == "reserve(2, {'f': 'read'}, 1, each_thread(None), None)"
    )
    assert (
        repr(gen.flip_flop(gen.until_ok(gen.cycle(R)), gen.synchronize(gen.then())))
        == "flip_flop(until_ok(cycle({'f': 'read'})), synchronize(then()))"
    )
    g3 = gen.on_threads([NEMESIS, 2, 0], gen.filter_(is_read, gen.map_(is_read, [])))
    assert repr(g3) == "on_threads([0, 2, 'nemesis'], filter_(is_read, map_(is_read, [])))"
    assert repr(gen.clients(R, W)) == (
        "any_(clients({'f': 'read'}), nemesis({'f': 'write', 'value': 1}))"
    )
    assert repr(PENDING) == "PENDING"


def test_builtins_satisfy_the_protocol_and_op_is_pure() -> None:
    g = gen.clients(gen.delay(0.1, gen.flip_flop(gen.repeat(R), gen.repeat(W))))
    assert isinstance(g, gen.Generator)
    ctx = Context.initial(3, seed=4)
    a = g.op(TEST, ctx)
    assert a is not None and a == g.op(TEST, ctx)  # nothing was mutated
    assert isinstance(a[0], Op) and a[0].f == "read"
    g2 = a[1]
    assert g2 is not None
    b = g2.op(TEST, ctx.busy(0))
    assert b is not None and isinstance(b[0], Op)
    assert (b[0].f, b[0].process, b[0].time) == ("write", 1, NS // 10)
    assert g.op(TEST, ctx) == a  # the old value still answers the same


# -- counting ------------------------------------------------------------


def test_once_limit_repeat_cycle() -> None:
    rep = gen.repeat(R)
    assert len(invokes(simulate(gen.limit(7, rep)))) == 7
    assert fs(simulate(gen.once([R, W]))) == ["read"]
    assert fs(simulate(gen.repeat(3, W))) == ["write"] * 3
    assert fs(simulate(gen.cycle(3, [R, W]))) == ["read", "write"] * 3
    assert fs(simulate(gen.limit(5, gen.cycle([R, W])))) == ["read", "write"] * 2 + ["read"]
    assert simulate(gen.cycle([])) == []  # an empty cycle ends instead of spinning
    assert simulate(gen.limit(0, rep)) == []


def test_limit_does_not_count_sleeps_and_logs() -> None:
    logs: list[str] = []
    ops = simulate(
        gen.nemesis(gen.limit(2, gen.cycle([gen.log("x"), gen.sleep(1), W]))),
        on_log=lambda t, m: logs.append(m),
    )
    assert fs(ops) == ["write", "write"]
    assert logs == ["x", "x"]


# -- timing --------------------------------------------------------------


def test_stagger_mean_gap_and_bounds() -> None:
    dt = 0.01
    ops = simulate(gen.clients(gen.limit(2000, gen.stagger(dt, gen.repeat(R)))), max_events=5000)
    times = [o.time for o in invokes(ops)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 2000
    assert all(0 <= g < 2 * dt * NS for g in gaps)
    assert statistics.mean(gaps) == pytest.approx(dt * NS, rel=0.06)
    assert statistics.pstdev(gaps) > dt * NS * 0.4  # random, not fixed spacing


def test_delay_spacing_is_exact_when_threads_are_free() -> None:
    ops = simulate(gen.clients(gen.limit(20, gen.delay(0.25, gen.repeat(R)))))
    times = [o.time for o in invokes(ops)]
    assert times == [i * NS // 4 for i in range(20)]


def test_delay_falls_behind_when_threads_are_busy() -> None:
    ops = simulate(
        gen.clients(gen.limit(5, gen.delay(0.1, gen.repeat(R)))), concurrency=1, latency=NS
    )
    times = [o.time for o in invokes(ops)]
    assert [b - a for a, b in itertools.pairwise(times)] == [NS] * 4


def test_time_limit_cuts_off_relative_to_first_op() -> None:
    g = gen.then(
        gen.nemesis(gen.sleep(2)),
        gen.synchronize(gen.time_limit(1, gen.clients(gen.delay(0.1, gen.repeat(R))))),
    )
    times = [o.time for o in invokes(simulate(g))]
    assert len(times) == 10
    assert times[0] == 2 * NS and times[-1] == 2 * NS + 9 * NS // 10


def test_simulate_time_limit_stops_new_ops_and_drains() -> None:
    ops = simulate(gen.clients(gen.delay(0.1, gen.repeat(R))), time_limit=1, latency=NS // 2)
    inv = invokes(ops)
    assert len(inv) == 10 and all(o.time < NS for o in inv)
    History(ops)  # every invoke completed, processes sequential


def test_sleep_occupies_the_nemesis_thread() -> None:
    sched = gen.nemesis(
        gen.cycle(2, [gen.sleep(10), {"f": "start-partition"}, gen.sleep(10), {"f": "stop"}])
    )
    ops = simulate(gen.any_(sched, gen.clients(gen.delay(1, gen.repeat(R)))), time_limit=45)
    nem = [(o.time, o.f) for o in invokes(ops) if o.process == NEMESIS]
    assert nem == [
        (10 * NS, "start-partition"),
        (20 * NS + 10, "stop"),
        (30 * NS + 20, "start-partition"),
        (40 * NS + 30, "stop"),
    ]
    assert {o.f for o in ops if o.is_client} == {"read"}  # clients never get nemesis ops
    assert sum(1 for o in invokes(ops) if o.is_client) == 45


def test_phases_wait_for_every_thread() -> None:
    lat = lambda op, rng: rng.randrange(1, 1000)  # noqa: E731
    ops = simulate(
        gen.phases(
            gen.clients(gen.limit(20, gen.repeat(W))),
            gen.nemesis({"f": "kill"}),
            gen.clients(gen.limit(20, gen.repeat(R))),
        ),
        latency=lat,
    )
    last_write_done = max(i for i, o in enumerate(ops) if o.f == "write")
    kill = [i for i, o in enumerate(ops) if o.f == "kill"]
    first_read = min(i for i, o in enumerate(ops) if o.f == "read")
    assert last_write_done < kill[0] < kill[1] < first_read


def test_then_does_not_wait() -> None:
    ops = simulate(gen.clients(gen.then(gen.once(W), gen.once(R))), latency=100)
    assert [(o.type, o.f) for o in ops[:2]] == [("invoke", "write"), ("invoke", "read")]


def test_synchronize_waits_for_in_flight_ops() -> None:
    ops = simulate(gen.clients([W, W, gen.synchronize(R)]), latency=100)
    assert [(o.type, o.f) for o in ops] == [
        ("invoke", "write"),
        ("invoke", "write"),
        ("ok", "write"),
        ("ok", "write"),
        ("invoke", "read"),
        ("ok", "read"),
    ]


# -- routing and concurrency ---------------------------------------------


def test_clients_and_nemesis_routing() -> None:
    g = gen.clients(gen.limit(30, gen.repeat(R)), gen.limit(3, gen.repeat({"f": "kill"})))
    ops = simulate(g, concurrency=3)
    for o in ops:
        assert (o.f == "kill") == (o.process == NEMESIS)
    assert Counter(o.f for o in invokes(ops)) == {"read": 30, "kill": 3}
    # routed to no thread at all: empty, rather than waiting forever
    assert simulate(gen.nemesis(R), nemesis=False) == []
    assert fs(simulate(gen.clients(R, gen.on_threads([7], W)), concurrency=1)) == ["read"]


def test_endless_sleeps_need_a_time_limit() -> None:
    forever = gen.nemesis(gen.cycle([gen.sleep(1)]))
    with pytest.raises(GeneratorError, match="time_limit"):
        simulate(forever, max_events=10)
    assert simulate(gen.then(forever, W), time_limit=100) == []


def test_stuck_generator_is_reported() -> None:
    class Stuck:
        def op(self, test: Any, ctx: Context) -> Any:
            return (PENDING, self)

        def update(self, test: Any, ctx: Context, event: Op) -> Any:
            return self

    with pytest.raises(GeneratorError, match="never make progress"):
        simulate(Stuck())


def test_on_threads() -> None:
    ops = simulate(gen.on_threads({1, 3}, gen.limit(10, gen.repeat(R))), latency=5)
    assert {o.process for o in ops} == {1, 3}
    ops = simulate(gen.on_threads(lambda t: t == 4, gen.limit(3, gen.repeat(R))))
    assert {o.process for o in ops} == {4}


def test_each_thread_gives_every_thread_its_own_copy() -> None:
    ops = simulate(gen.clients(gen.each_thread([{"f": "inc"}, R])), concurrency=3, latency=7)
    per: dict[Any, list[str]] = {}
    for o in invokes(ops):
        per.setdefault(o.process, []).append(o.f)
    assert per == {0: ["inc", "read"], 1: ["inc", "read"], 2: ["inc", "read"]}


def test_reserve_thread_ranges() -> None:
    g = gen.clients(gen.reserve(2, gen.repeat(W), 1, gen.repeat({"f": "cas"}), gen.repeat(R)))
    ops = simulate(gen.limit(200, g), concurrency=5, latency=lambda o, r: r.randrange(1, 50))
    by_f: dict[str, set[Any]] = {}
    for o in invokes(ops):
        by_f.setdefault(o.f, set()).add(o.process)
    assert by_f == {"write": {0, 1}, "cas": {2}, "read": {3, 4}}
    no_default = gen.clients(gen.reserve(1, gen.repeat(W), None))
    assert {o.process for o in simulate(gen.limit(10, no_default))} == {0}


def test_mix_is_random_and_deterministic_from_the_seed() -> None:
    g = gen.clients(gen.limit(300, gen.mix([gen.repeat(R), gen.repeat(W), gen.repeat({"f": "c"})])))
    a = simulate(g, seed=1)
    assert a == simulate(g, seed=1)
    assert fs(a) != fs(simulate(g, seed=2))
    counts = Counter(fs(a))
    assert set(counts) == {"read", "write", "c"}
    assert all(70 < n < 130 for n in counts.values())
    assert Counter(fs(simulate(gen.mix([R, W])))) == {"read": 1, "write": 1}  # dicts are one op


def test_any_takes_the_soonest() -> None:
    g = gen.clients(
        gen.any_(gen.limit(3, gen.delay(1, gen.repeat(R))), gen.delay(0.4, gen.repeat(3, W)))
    )
    ops = invokes(simulate(g))
    assert [(o.time * 10 // NS, o.f) for o in ops] == [
        (0, "read"),
        (0, "write"),
        (4, "write"),
        (8, "write"),
        (10, "read"),
        (20, "read"),
    ]


def test_flip_flop_alternates_and_stops() -> None:
    assert fs(simulate(gen.flip_flop(gen.repeat(R), [W, W]))) == [
        "read",
        "write",
        "read",
        "write",
        "read",
    ]


def test_until_ok_stops_after_first_ok() -> None:
    def complete(op: Op, ctx: Context) -> str:
        return "ok" if op.value == 3 else "fail"

    counter = gen.clients(lambda test, ctx: {"f": "try", "value": ctx.time // 10})
    ops = simulate(gen.until_ok(counter), concurrency=1, complete=complete)
    assert [(o.type, o.value) for o in ops][-2:] == [("invoke", 3), ("ok", 3)]
    assert len(invokes(ops)) == 4


def test_filter_and_map() -> None:
    g = gen.map_(
        lambda o: o.replace(value=o.value * 10),
        gen.filter_(lambda o: o.value % 2 == 0, [{"f": "x", "value": i} for i in range(6)]),
    )
    assert [o.value for o in invokes(simulate(g))] == [0, 20, 40]
    with pytest.raises(GeneratorError, match="must return an Op"):
        simulate(gen.map_(lambda o: None, R))  # type: ignore[arg-type,return-value]


def test_info_retires_the_process() -> None:
    def complete(op: Op, ctx: Context) -> Op:
        return op.replace(type="info" if op.value == 1 else "ok", error="timeout")

    ops = simulate(
        gen.clients([{"f": "w", "value": 1}, {"f": "w", "value": 2}, {"f": "w", "value": 3}]),
        concurrency=2,
        complete=complete,
        latency=5,
    )
    assert [(o.process, o.type, o.value) for o in ops] == [
        (0, "invoke", 1),
        (1, "invoke", 2),
        (0, "info", 1),
        (1, "ok", 2),
        (2, "invoke", 3),  # thread 0 continues as process 0 + concurrency
        (2, "ok", 3),
    ]
    assert ops[2].error == "timeout"
    History(ops)


def test_nemesis_completes_info_by_default_and_logs_are_ordered() -> None:
    logs: list[tuple[int, str]] = []
    ops = simulate(
        gen.nemesis([gen.log("a"), {"f": "kill"}, gen.log("b")]),
        on_log=lambda t, m: logs.append((t, m)),
    )
    assert [(o.type, o.process) for o in ops] == [("invoke", NEMESIS), ("info", NEMESIS)]
    assert logs == [(0, "a"), (10, "b")]


def test_actions_carry_the_process() -> None:
    ctx = Context.initial(2).busy(0)
    assert gen.sleep(1).op(TEST, ctx) == (Sleep(1.0, 1), None)
    assert gen.log("m").op(TEST, ctx) == (Log("m", 1), None)
    full = ctx.busy(1).busy(NEMESIS)
    assert gen.sleep(1).op(TEST, full)[0] is PENDING  # type: ignore[index]


def test_broken_generator_is_reported() -> None:
    class Bad:
        def op(self, test: Any, ctx: Context) -> Any:
            return (Op(time=ctx.time, process=0, type="invoke", f="x"), self)

        def update(self, test: Any, ctx: Context, event: Op) -> Any:
            return self

    with pytest.raises(GeneratorError, match="not free"):
        simulate(Bad(), latency=100)


# -- properties ----------------------------------------------------------

leaf = st.sampled_from(
    [
        ("repeat(R)", lambda: gen.repeat(R)),
        ("W", lambda: W),
        ("[R, W]", lambda: [R, W]),
        ("sleep", lambda: gen.sleep(0.05)),
        ("fn", lambda: lambda test, ctx: {"f": "f", "value": ctx.rng.random()}),
    ]
)


def combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    one = st.tuples(
        st.sampled_from(
            [
                lambda g: gen.limit(5, g),
                lambda g: gen.stagger(0.01, g),
                lambda g: gen.delay(0.02, g),
                gen.clients,
                gen.nemesis,
                gen.each_thread,
                gen.synchronize,
                gen.until_ok,
                lambda g: gen.cycle(2, g),
                lambda g: gen.time_limit(0.5, g),
                lambda g: gen.on_threads({0, 2}, g),
            ]
        ),
        children,
    ).map(lambda t: ("", lambda: t[0](t[1][1]())))
    many = st.tuples(
        st.sampled_from(
            [
                lambda gs: gen.mix(gs),
                lambda gs: gen.any_(*gs),
                lambda gs: gen.phases(*gs),
                lambda gs: gen.then(*gs),
                lambda gs: gen.flip_flop(*gs),
                lambda gs: gen.reserve(*[x for g in gs[:-1] for x in (1, g)], gs[-1]),
            ]
        ),
        st.lists(children, min_size=2, max_size=3),
    ).map(lambda t: ("", lambda: t[0]([c[1]() for c in t[1]])))
    return one | many


gens = st.recursive(leaf, combine, max_leaves=6)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain"
)
@given(
    g=gens,
    n=st.integers(0, 30),
    seed=st.integers(0, 2**16),
    conc=st.integers(1, 4),
    info=st.booleans(),
)
def test_any_generator_only_uses_free_processes_and_is_deterministic(
    g: Any, n: int, seed: int, conc: int, info: bool
) -> None:
    def complete(op: Op, ctx: Context) -> str:
        return ctx.rng.choice(["ok", "info", "fail"]) if info else "ok"

    def run() -> list[Op]:
        return simulate(
            gen.time_limit(5, gen.limit(n, g[1]())),
            concurrency=conc,
            seed=seed,
            complete=complete,
            latency=lambda op, rng: rng.randrange(1, 10**7),
            max_events=500,
        )

    ops = run()  # simulate raises GeneratorError on any busy/unknown process
    History(ops)  # sequential processes, every completion paired
    assert len(invokes(ops)) <= n
    assert ops == run()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=5), st.integers(0, 1000))
def test_mix_of_finite_generators_emits_everything(sizes: list[int], seed: int) -> None:
    g = gen.mix([gen.repeat(k, {"f": str(i)}) for i, k in enumerate(sizes)])
    got = Counter(fs(simulate(g, seed=seed)))
    assert got == Counter({str(i): k for i, k in enumerate(sizes) if k})


def test_rng_is_the_only_randomness() -> None:
    random.seed(1)
    a = simulate(gen.clients(gen.limit(50, gen.stagger(0.1, gen.mix([R, W] * 30)))), seed=9)
    random.seed(2)
    b = simulate(gen.clients(gen.limit(50, gen.stagger(0.1, gen.mix([R, W] * 30)))), seed=9)
    assert a == b


def test_module_docstring_example_runs() -> None:
    import doctest

    failures, tried = doctest.testmod(gen, verbose=False)
    assert tried >= 3 and failures == 0


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(a=gens, b=gens, seed=st.integers(0, 1000))
def test_clients_never_run_nemesis_ops(a: Any, b: Any, seed: int) -> None:
    g = gen.clients(
        gen.map_(lambda o: o.replace(f="client"), a[1]()),
        gen.map_(lambda o: o.replace(f="nemesis"), b[1]()),
    )
    ops = simulate(gen.time_limit(3, gen.limit(40, g)), concurrency=3, seed=seed, max_events=200)
    assert all((o.f == "nemesis") == (o.process == NEMESIS) for o in ops)


def test_context_built_by_hand_like_the_runner() -> None:
    import types

    workers = types.MappingProxyType({0: 5, 1: 1, NEMESIS: NEMESIS})
    ctx = Context(
        time=7, free_threads=frozenset({0, NEMESIS}), workers=workers, rng=random.Random()
    )
    r = gen.clients(gen.repeat(R)).op(TEST, ctx)
    assert r is not None and isinstance(r[0], Op)
    assert (r[0].process, r[0].time) == (5, 7)
    assert ctx.thread_of(5) == 0 and ctx.thread_of(0) is None
    pending = gen.nemesis(W).op(TEST, ctx.busy(NEMESIS))
    assert pending is not None and pending[0] is PENDING


class _CheckIgnores:
    """Wraps a generator; on every event asserts that a generator the runner
    would skip (``ignores_events``) really returns itself from ``update``."""

    def __init__(self, g: Any) -> None:
        self.g = g
        self.skippable = 0

    def op(self, test: Any, ctx: Context) -> Any:
        r = self.g.op(test, ctx)
        if r is None or r[0] is PENDING:
            return None if r is None else (PENDING, self)
        return (r[0], None if r[1] is None else self._with(r[1]))

    def _with(self, g: Any) -> _CheckIgnores:
        c = _CheckIgnores(g)
        c.skippable = self.skippable
        return c

    def update(self, test: Any, ctx: Context, event: Op) -> Any:
        skip = ignores_events(self.g)
        g2 = self.g.update(test, ctx, event)
        if skip:
            assert g2 is self.g, f"{self.g!r} changed on {event!r}"
            self.skippable += 1
        return None if g2 is None else self if g2 is self.g else self._with(g2)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(g=gens, seed=st.integers(0, 2**16), conc=st.integers(1, 4))
def test_generators_said_to_ignore_events_return_themselves(g: Any, seed: int, conc: int) -> None:
    c = _CheckIgnores(gen.time_limit(5, gen.limit(30, g[1]())))
    simulate(c, concurrency=conc, seed=seed, max_events=200)


def test_ignores_events_for_the_usual_stacks() -> None:
    from jepsy.workloads.register import IndependentRegisters

    nem = gen.nemesis(gen.cycle([gen.sleep(5), {"f": "start"}, gen.sleep(5), {"f": "stop"}]))
    assert ignores_events(gen.clients(IndependentRegisters()))
    assert ignores_events(gen.any_(gen.clients(gen.stagger(0.1, gen.mix([R, W]))), nem))
    assert not ignores_events(gen.clients(gen.until_ok(R)))
    assert not ignores_events(gen.any_(gen.clients(gen.each_thread(R)), nem))


def test_fast_constructors_match_the_dataclasses() -> None:
    import dataclasses

    from jepsy.generator import _mkctx, make_op

    # make_op takes Op's fields positionally, in this order.
    names = ["index", "time", "process", "type", "f", "value", "node", "error", "extra"]
    assert [f.name for f in dataclasses.fields(Op)] == names
    kw: dict[str, Any] = dict(
        index=3, time=4, process=1, type="ok", f="read", value=[1, 2], node="n1", error="e"
    )
    kw["extra"] = {"x": 1}
    assert make_op(*kw.values()) == Op(**kw)
    rng = random.Random(1)
    ctx = _mkctx(5, frozenset({0}), {0: 0}, rng, None)
    assert ctx == Context(time=5, free_threads=frozenset({0}), workers={0: 0}, rng=rng)
    assert repr(ctx) == repr(Context(time=5, free_threads=frozenset({0}), workers={0: 0}, rng=rng))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.time = 1  # type: ignore[misc]
    g = gen.clients(gen.stagger(0.1, gen.repeat(R)))
    r = g.op(TEST, Context.initial(2))
    assert r is not None and r[1] is not None
    assert repr(r[1]) == repr(g)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r[1].gen = g  # type: ignore[attr-defined]
