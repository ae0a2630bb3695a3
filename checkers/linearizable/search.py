"""The search core: Wing-Gong-Lowe over flat int arrays, verdict out.

Everything model- and history-specific is decided before this module runs
(:mod:`.problem`), so the core sees only a :class:`Problem` of int arrays and
returns an :class:`Outcome`.  That narrow interface is where an optional
native accelerator could slot in without changing a verdict.

The search is a depth-first walk over *configurations*: which completed ops
are linearized (``lo``: every op before index ``lo`` in call order is; ``w``:
a bit window for the ops after it), which pending ops took effect (``pu``, a
bitset) and the model state (an int).  An op may be linearized next when it
was called before the earliest return among the unlinearized completed ops.

Rules that cut the search, each sound on its own:

- *memo with dominance*: a configuration is skipped when one with the same
  completed set and state, and a subset of its used pending ops, was already
  entered (an unused pending op may still never take effect, so fewer used is
  never worse);
- *symmetry*: identical pending ops are taken only in call order (``pred``);
- *greedy reads*: a completed op that cannot change the state and is legal
  now is linearized at once, with no alternative tried (moving a read
  earlier, to a point it is legal, changes nothing else);
- the goal is reached as soon as every completed op is linearized.

Two orders are used: *lazy* (completed ops first, pending ops generated
only when the search comes back to a configuration) and *eager* (all
candidates by call time, like Porcupine).  :func:`solve` runs both side by
side, as generators taking turns of a few CPU milliseconds, under one
deadline and one memory cap.

By example::

    >>> p = Problem(ccall=[0, 1], cret=[2, 3], ckind=[WRITE, READ], ca=[1, 1], cb=[0, 0])
    >>> solve(p, deadline=float("inf")).valid
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

READ, WRITE, CAS, GEN, GENREAD = 0, 1, 2, 3, 4
"""Op kinds: register read/write/cas on interned values, a generic model op, a
generic op that never changes the state (``Model.is_read``)."""

INF = 1 << 62
TAIL = 32
"""How many ops of each longest linearizable prefix are kept for explanations."""
MAX_CONFIGS_KEPT = 10


@dataclass
class Problem:
    """A history reduced to int arrays.

    Completed ops (must be linearized) are indexed 0..m-1 by call time with
    ``ccall``/``cret`` (times; an op may linearize only in ``(call, ret)``),
    ``ckind`` and arguments ``ca``/``cb``.  Pending ops (may linearize any
    time after their call, or never) likewise with ``p*``; ``ppred[q]`` is the
    previous identical pending op or -1.  ``gstep(op_id, state) -> state or
    -1`` steps generic ops, where op_id is k for completed op k and m+q for
    pending op q.  States are ints; ``init`` is the initial one."""

    ccall: list[int]
    cret: list[int]
    ckind: list[int]
    ca: list[int]
    cb: list[int]
    pcall: list[int] = field(default_factory=list)
    pkind: list[int] = field(default_factory=list)
    pa: list[int] = field(default_factory=list)
    pb: list[int] = field(default_factory=list)
    ppred: list[int] = field(default_factory=list)
    init: int = 0
    gstep: Callable[[int, int], int] | None = None

    @property
    def m(self) -> int:
        return len(self.ccall)


@dataclass
class Frontier:
    """One configuration at the furthest point the search reached."""

    path: list[tuple[int, int, int, int, int]]
    depth: int
    lo: int
    w: int
    pu: int
    state: int


@dataclass
class Outcome:
    """``valid``: True, False or None (budget ran out, ``reason`` says which).

    ``linearization``: op ids in order when valid.  ``frontier``: up to
    ten configurations with the most completed ops linearized (for the
    explanation when invalid).  ``configs``: configurations entered."""

    valid: bool | None
    reason: str | None = None
    frontier: list[Frontier] = field(default_factory=list)
    progress: int = 0
    configs: int = 0
    order: str | None = None
    path: list[Child] | None = None
    m: int = 0

    def blocked(self, path: list[Child], lo: int, w: int, pu: int, state: int) -> None:
        """Note a configuration where no completed op can come next: the ones
        with the most completed ops linearized explain a failure."""
        prog = lo + w.bit_count()
        if prog >= self.progress:
            if prog > self.progress:
                self.progress = prog
                self.frontier.clear()
            if len(self.frontier) < MAX_CONFIGS_KEPT:
                self.frontier.append(Frontier(path[-TAIL:], len(path) - 1, lo, w, pu, state))

    def found(self, path: list[Child], m: int) -> None:
        """Keep the path to the goal (a copy: the search goes on using its list)."""
        self.path = list(path)
        self.m = m

    @property
    def linearization(self) -> list[int] | None:
        """Op ids in linearization order, worked out from the path when asked."""
        path = self.path
        if path is None:
            return None
        return [op for i in range(1, len(path)) for op in step_ops(path[i - 1], path[i], self.m)]


def step_ops(prev: Child, cur: Child, m: int) -> list[int]:
    """The op ids linearized between two consecutive configurations (one op,
    or several reads taken together), completed ones in call order first."""
    a = ((1 << prev[0]) - 1) | (prev[1] << prev[0])
    b = ((1 << cur[0]) - 1) | (cur[1] << cur[0])
    d = b & ~a
    ops = []
    while d:
        low = d & -d
        ops.append(low.bit_length() - 1)
        d ^= low
    pd = cur[2] & ~prev[2]
    while pd:
        low = pd & -pd
        ops.append(m + low.bit_length() - 1)
        pd ^= low
    return ops


class _OutOfBudget(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


Child = tuple[int, int, int, int, int]
"""(lo, w, pu, state, op id): a configuration and the op that led to it.
Op id -1 is the root; an op id <= -2 is a *marker* meaning "the pending
children of this configuration are still to be generated"."""


def _classes(
    p: Problem,
) -> tuple[list[list[tuple[int, int]]], dict[int, list[tuple[int, int]]], list[int]]:
    """Pending ops grouped into classes of identical ops, as bitmasks.

    Writes as (mask, value) in one list per ``lo``: only the classes that
    may be called before the earliest return (``call < max(cret[:lo+1])``)
    and whose value some completed op at or after ``lo`` observes (a read
    of it, a CAS from it; always, if a pending CAS from it exists).  A
    pending write nobody can observe any more is never needed (rule 3 of
    the reductions, applied to what is left of the history).  CAS as
    (mask, new) by expected value; generic classes as masks."""
    cls_of: list[int] = []
    masks: list[int] = []
    reps: list[int] = []
    for q, pr in enumerate(p.ppred):
        if pr < 0:
            cls_of.append(len(masks))
            masks.append(0)
            reps.append(q)
        else:
            cls_of.append(cls_of[pr])
        masks[cls_of[q]] |= 1 << q
    writes: list[tuple[int, int, int]] = []  # (first call, mask, value)
    cas: dict[int, list[tuple[int, int]]] = {}
    gen: list[int] = []
    for c, q in enumerate(reps):
        kd = p.pkind[q]
        if kd == WRITE:
            writes.append((p.pcall[q], masks[c], p.pa[q]))
        elif kd == CAS:
            cas.setdefault(p.pa[q], []).append((masks[c], p.pb[q]))
        elif kd != READ:
            gen.append(masks[c])
    m = p.m
    if not writes:
        return [[]] * (m + 1), cas, gen
    last_obs: dict[int, int] = {}
    for k in range(m):
        if p.ckind[k] in (READ, CAS):
            last_obs[p.ca[k]] = k
    for v in cas:
        last_obs[v] = m
    writes.sort()
    by_lo: list[list[tuple[int, int]]] = []
    active: list[tuple[int, int, int]] = []
    nxt = 0
    bound = -1
    for lo in range(m + 1):
        bound = max(bound, p.cret[lo]) if lo < m else INF
        while nxt < len(writes) and writes[nxt][0] < bound:
            _, mask, v = writes[nxt]
            active.append((last_obs.get(v, -1), mask, v))
            nxt += 1
        active = [a for a in active if a[0] >= lo]
        by_lo.append([(mask, v) for _, mask, v in active])
    return by_lo, cas, gen


def _run(
    p: Problem,
    *,
    eager: bool,
    deadline: float,
    max_configs: int,
    out: Outcome,
    cpu_limit: float = INF,
) -> bool:
    """One complete search in one order; True iff linearizable.

    Raises _OutOfBudget ("time", "memory", or "slice" past ``cpu_limit``, a
    ``time.process_time()`` value)."""
    gen = _search(p, eager=eager, out=out)
    perf = time.perf_counter
    cpu = time.process_time
    while True:
        try:
            stored = next(gen)
        except StopIteration as e:
            return bool(e.value)
        if perf() > deadline:
            raise _OutOfBudget("time")
        if cpu() > cpu_limit:
            raise _OutOfBudget("slice")
        if stored > max_configs:
            raise _OutOfBudget("memory")


def _search(p: Problem, *, eager: bool, out: Outcome) -> Generator[int, None, bool]:
    """One complete search in one order, as a generator: it yields the number
    of configurations remembered every 1,024 configurations (so a driver
    can check budgets and switch between searches) and returns True iff
    linearizable.  Fills ``out.frontier``/``out.progress`` as it goes."""
    ccall, cret, ckind, ca, cb = p.ccall, p.cret, p.ckind, p.ca, p.cb
    pcall = p.pcall
    gstep = p.gstep
    m = len(ccall)
    has_pending = len(pcall) > 0
    wclasses, casclasses, gclasses = _classes(p)
    no_cas: list[tuple[int, int]] = []
    cas_by_to: dict[int, list[tuple[int, int]]] = {}
    for frm, lst in casclasses.items():
        for mask, to in lst:
            cas_by_to.setdefault(to, []).append((mask, frm))
    memo: dict[tuple[int, int, int], list[int]] = {}
    seen: set[tuple[int, int, int]] = set()
    stack: list[list[Child]] = [[(0, 0, 0, p.init, -1)]]
    path: list[Child] = []
    out.frontier.clear()
    out.progress = 0
    it = 0
    stored = 0
    while stack:
        kids = stack[-1]
        if not kids:
            stack.pop()
            if path:
                path.pop()
            continue
        child = kids.pop()
        lo, w, pu, st, opid = child
        marker = opid <= -2
        if not marker:
            it += 1
            if not it & 1023:
                out.configs += 1024
                yield stored
            key = (lo, w, st)
            stored += 1
            if has_pending:
                prev = memo.get(key)
                if prev is None:
                    memo[key] = [pu]
                else:
                    dominated = False
                    for q in prev:
                        if not q & ~pu:
                            dominated = True
                            break
                    if dominated:
                        stored -= 1
                        continue
                    prev.append(pu)
            else:
                if key in seen:
                    stored -= 1
                    continue
                seen.add(key)
            path.append(child)
            if lo == m:
                out.configs += it & 1023
                out.found(path, m)
                return True
        # Candidates among completed ops: called before the earliest return R.
        r_min = INF
        k = lo
        ww = w
        cands: list[int] = []
        while k < m:
            if ccall[k] >= r_min:
                break
            if not ww & 1:
                r = cret[k]
                if r < r_min:
                    r_min = r
                cands.append(k)
            k += 1
            ww >>= 1
        comp_kids: list[Child] = []
        if not marker:
            # Greedy reads: every read that may come next and matches the state
            # is linearized at once, in one step, with no alternative tried.
            rbits = 0
            first_read = -1
            for k in cands:
                if ckind[k] == READ and ca[k] == st and ccall[k] < r_min:
                    rbits |= 1 << (k - lo)
                    if first_read < 0:
                        first_read = k
            if rbits:
                w2 = w | rbits
                if w2 & 1:
                    t = ((w2 + 1) & ~w2).bit_length() - 1
                    stack.append([(lo + t, w2 >> t, pu, st, first_read)])
                else:
                    stack.append([(lo, w2, pu, st, first_read)])
                continue
            greedy = None
            for k in cands:
                if ccall[k] >= r_min:
                    continue
                kd = ckind[k]
                if kd == READ:
                    if ca[k] != st:
                        continue
                    ns = st
                elif kd == WRITE:
                    ns = ca[k]
                elif kd == CAS:
                    if ca[k] != st:
                        continue
                    ns = cb[k]
                else:
                    assert gstep is not None
                    ns = gstep(k, st)
                    if ns < 0:
                        continue
                j = k - lo
                if j:
                    nxt = (lo, w | (1 << j), pu, ns, k)
                else:
                    w2 = w | 1
                    t = ((w2 + 1) & ~w2).bit_length() - 1
                    nxt = (lo + t, w2 >> t, pu, ns, k)
                if kd == GENREAD and ns == st:
                    greedy = nxt
                    break
                comp_kids.append(nxt)
            if greedy is not None:
                stack.append([greedy])
                continue
            if not comp_kids:
                # Blocked: no completed op can come next.  The furthest such
                # configurations explain a failure.
                out.blocked(path, lo, w, pu, st)
            if has_pending and not eager and comp_kids:
                # Lazy order: pending children only when we come back here.
                comp_kids.reverse()
                stack.append([(lo, w, pu, st, -2), *comp_kids])
                continue
        if not has_pending:
            comp_kids.reverse()
            stack.append(comp_kids)
            continue
        # Pending children: the first unused op of each class, called before R,
        # and (register ops) only one whose result can be observed before it is
        # overwritten: a value a read/CAS candidate wants, or the expected value
        # of an available pending CAS whose result is itself useful.  (In any
        # continuation, a pending write overwritten before anyone sees it can be
        # left out: the rest stays legal and uses fewer pending ops.)
        wanted = set()
        for k in cands:
            if ccall[k] < r_min and ckind[k] != WRITE:
                wanted.add(ca[k])
        useful = wanted
        if cas_by_to:
            useful = set(wanted)
            todo = list(wanted)
            while todo:
                y = todo.pop()
                for mask, a in cas_by_to.get(y, no_cas):
                    if a not in useful:
                        x = mask & ~pu
                        if x and pcall[(x & -x).bit_length() - 1] < r_min:
                            useful.add(a)
                            todo.append(a)
        first: list[tuple[int, int, Child]] = []
        later: list[tuple[int, int, Child]] = []
        for mask, ns in wclasses[lo]:
            x = mask & ~pu
            if x:
                bit = x & -x
                q = bit.bit_length() - 1
                c = pcall[q]
                if c < r_min:
                    if ns in wanted:
                        first.append((c, q, (lo, w, pu | bit, ns, m + q)))
                    elif ns in useful:
                        later.append((c, q, (lo, w, pu | bit, ns, m + q)))
        for mask, ns in casclasses.get(st, no_cas):
            x = mask & ~pu
            if x:
                bit = x & -x
                q = bit.bit_length() - 1
                c = pcall[q]
                if c < r_min:
                    if ns in wanted:
                        first.append((c, q, (lo, w, pu | bit, ns, m + q)))
                    elif ns in useful:
                        later.append((c, q, (lo, w, pu | bit, ns, m + q)))
        for mask in gclasses:
            x = mask & ~pu
            if x:
                bit = x & -x
                q = bit.bit_length() - 1
                c = pcall[q]
                if c < r_min:
                    assert gstep is not None
                    ns = gstep(m + q, st)
                    if ns >= 0 and ns != st:
                        # (A pending op that changes nothing is never needed.)
                        later.append((c, q, (lo, w, pu | bit, ns, m + q)))
        if eager:
            allk = [(ccall[c[4]], c[4], c) for c in comp_kids] + first + later
            allk.sort(reverse=True)
            new = [c for _, _, c in allk]
        else:
            first.sort(reverse=True)
            later.sort(reverse=True)
            new = [c for _, _, c in later] + [c for _, _, c in first]
        if marker:
            kids.extend(new)
        else:
            stack.append(new)
    out.configs += it & 1023
    return False


def _search_plain(p: Problem, *, out: Outcome) -> Generator[int, None, bool]:
    """:func:`_search` specialised to register ops with no pending op left
    (the common case after the reductions): the same search, fewer branches.

    One scan per configuration finds the candidates (ops called before the
    earliest return among the unlinearized ones), the reads that match the
    state and the legal writes and CAS ops at once.  Every op the scan takes
    is a candidate: calls are sorted, so a later op's return, which follows
    its own call, can never fall before an earlier op's call."""
    ccall, cret, ckind, ca, cb = p.ccall, p.cret, p.ckind, p.ca, p.cb
    m = len(ccall)
    seen: set[tuple[int, int, int]] = set()
    add = seen.add
    # Lists of children still to try, each with the length of the path when
    # it was pushed: taking a child from a list cuts the path back to that.
    # A configuration with one child (the greedy reads, or one legal op) is
    # followed at once, with no list: most steps of a valid history.
    stack: list[list[Child]] = [[(0, 0, 0, p.init, -1)]]
    marks = [0]
    path: list[Child] = []
    push = stack.append
    mark = marks.append
    out.frontier.clear()
    out.progress = 0
    it = 0
    while stack:
        kids = stack[-1]
        if not kids:
            stack.pop()
            marks.pop()
            continue
        child = kids.pop()
        del path[marks[-1] :]
        while True:
            lo, w, _, st, _ = child
            it += 1
            if not it & 1023:
                out.configs += 1024
                yield len(seen)
            key = (lo, w, st)
            if key in seen:
                break
            add(key)
            path.append(child)
            if lo == m:
                out.configs += it & 1023
                out.found(path, m)
                return True
            r_min = INF
            k = lo
            ww = w
            rbits = 0
            first_read = -1
            legal: list[int] = []
            while k < m:
                if ccall[k] >= r_min:
                    break
                if not ww & 1:
                    r = cret[k]
                    if r < r_min:
                        r_min = r
                    kd = ckind[k]
                    if kd == READ:
                        if ca[k] == st:
                            rbits |= 1 << (k - lo)
                            if first_read < 0:
                                first_read = k
                    elif kd == WRITE or ca[k] == st:
                        legal.append(k)
                k += 1
                ww >>= 1
            if rbits:
                # Greedy reads: all matching reads at once, no alternative tried.
                w2 = w | rbits
                if w2 & 1:
                    t = ((w2 + 1) & ~w2).bit_length() - 1
                    child = (lo + t, w2 >> t, 0, st, first_read)
                else:
                    child = (lo, w2, 0, st, first_read)
                continue
            if not legal:
                out.blocked(path, lo, w, 0, st)
                break
            comp_kids: list[Child] = []
            for k in reversed(legal):
                ns = ca[k] if ckind[k] == WRITE else cb[k]
                if k == lo:
                    w2 = w | 1
                    t = ((w2 + 1) & ~w2).bit_length() - 1
                    comp_kids.append((lo + t, w2 >> t, 0, ns, k))
                else:
                    comp_kids.append((lo, w | (1 << (k - lo)), 0, ns, k))
            if len(comp_kids) == 1:
                child = comp_kids[0]
                continue
            push(comp_kids)
            mark(len(path))
            break
    out.configs += it & 1023
    return False


_REGISTER_KINDS = frozenset((READ, WRITE, CAS))
EAGER_FIRST_PENDING = 16
"""With more pending ops than this left for the search, the eager order goes first."""


def solve(
    p: Problem,
    *,
    deadline: float,
    max_configs: int = 10_000_000,
    slice_seconds: float = 0.05,
) -> Outcome:
    """Decide ``p`` with a two-order portfolio.

    Two searches, lazy and eager, run side by side, taking turns of
    ``slice_seconds`` of CPU time and each resuming where it stopped, so the
    verdict comes after about twice the time of the faster order.  Both are
    complete, so whichever finishes gives the verdict.  The first turn goes
    to lazy, or to eager when many pending ops are left.  ``deadline`` is a
    ``time.perf_counter()`` value; past it, or with more than
    ``max_configs`` configurations remembered (both searches together), the
    outcome is ``valid=None`` with ``reason`` ``"time"`` or ``"memory"``."""
    if not p.pcall and p.gstep is None and set(p.ckind) <= _REGISTER_KINDS:
        outs = [Outcome(valid=None, order="lazy")]
        gens = [_search_plain(p, out=outs[0])]
    else:
        first_eager = len(p.pcall) > EAGER_FIRST_PENDING
        orders = [first_eager, not first_eager] if p.pcall else [False]
        outs = [Outcome(valid=None, order="eager" if e else "lazy") for e in orders]
        gens = [_search(p, eager=e, out=o) for e, o in zip(orders, outs, strict=True)]
    stored = [0] * len(gens)
    perf = time.perf_counter
    cpu = time.process_time
    i = 0
    turn_end = cpu() + slice_seconds
    while True:
        try:
            stored[i] = next(gens[i])
        except StopIteration as e:
            out = outs[i]
            out.valid = bool(e.value)
            out.configs = sum(o.configs for o in outs)
            return out
        reason = None
        if perf() > deadline:
            reason = "time"
        elif sum(stored) > max_configs:
            reason = "memory"
        if reason is not None:
            out = max(outs, key=lambda o: o.progress)
            out.reason = reason
            out.configs = sum(o.configs for o in outs)
            return out
        if len(gens) > 1 and cpu() > turn_end:
            i = 1 - i
            turn_end = cpu() + slice_seconds
