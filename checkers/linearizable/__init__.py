"""Knossos-style linearizability checking.

``linearizable(model)`` returns a checker that decides whether a history has
a linearization consistent with a sequential model: a total order of the
operations that respects real time (an op that completed before another was
invoked comes first) and that the model accepts.  Semantics, as in Knossos:

- ``fail`` ops certainly did not happen: dropped;
- ``info`` ops and invocations that never completed may take effect at any
  time after their invocation, or never;
- nemesis ops (non-integer process) are ignored;
- registers start unset (``None``); an ok read of ``None`` means "unset".

The search is Wing-Gong-Lowe with memoisation on (linearized set, state),
P-compositionality (``independent=True`` splits Jepsen's ``[key value]``
histories by key; a model's ``partition`` splits further), checked in
worker processes when there are enough parts to pay for it.  Budgets give
``"unknown"`` with a reason, never a hang.  See ``docs/linearizability.md``.

By example::

    >>> from jepsy.history import History
    >>> h = History.from_dicts([
    ...     {"process": 0, "type": "invoke", "f": "write", "value": 1},
    ...     {"process": 0, "type": "ok", "f": "write", "value": 1},
    ...     {"process": 1, "type": "invoke", "f": "read", "value": None},
    ...     {"process": 1, "type": "ok", "f": "read", "value": 2}])
    >>> linearizable("register").check(None, h, {}).valid  # type: ignore[arg-type]
    False
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from jepsy.checkers.core import Result, merge_valid
from jepsy.checkers.linearizable.explain import explain, explain_violation, jsonable
from jepsy.checkers.linearizable.models import (
    MODELS,
    CASRegister,
    Model,
    Register,
    as_model,
    get_model,
)
from jepsy.checkers.linearizable.problem import (
    Built,
    Entry,
    Slot,
    build,
    build_register_slots,
    pair_by_key,
    to_entries,
)
from jepsy.checkers.linearizable.search import solve
from jepsy.errors import ConfigError, ModelError
from jepsy.forking import CPUS, Child, can_fork, fork_call

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import History

__all__ = ["MODELS", "Linearizable", "Model", "get_model", "linearizable"]

log = logging.getLogger(__name__)

BYTES_PER_CONFIG = 200
"""Rough memory a remembered configuration costs (tuple key, dict slot, list)."""
DEFAULT_MEMORY_MB = 2048
"""The memo cap when none is given: this, or half the available memory if less."""


_MEMORY_SEEN: list[float] = []  # [monotonic time, MB] of the last look


def _default_memory_mb() -> int:
    # Asked once a second at most: checking many small histories in a row
    # would otherwise spend much of its time reading /proc/meminfo.
    now = time.monotonic()
    if _MEMORY_SEEN and now - _MEMORY_SEEN[0] < 1.0:
        return int(_MEMORY_SEEN[1])
    avail = _available_mb()
    if avail is None:
        return DEFAULT_MEMORY_MB
    mb = max(64, min(DEFAULT_MEMORY_MB, avail // 2))
    _MEMORY_SEEN[:] = [now, mb]
    return mb


def _available_mb() -> int | None:
    """Available memory in MB: MemAvailable of /proc/meminfo (psutil reads
    the same file, but importing it costs 30 ms), psutil elsewhere."""
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) // 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available // (1024 * 1024))
    except Exception:  # no psutil either: the caller keeps the fixed default
        return None


MAX_EXPLAINED_KEYS = 10
QUICK_SEARCH_SECONDS = 0.05
QUICK_SEARCH_CONFIGS_PER_OP = 2
"""The short search that runs before the register pre-check: this long at
most, and this many configurations per op (a valid history usually needs
about one)."""
PARALLEL_MIN_PARTS = 4
PARALLEL_MIN_OPS = 20_000
"""Worker processes start only for at least this many parts and ops: below
that, starting them costs more than the second core gives."""


@dataclass(frozen=True)
class Task:
    """One key (or the whole history): its label, model and paired ops.

    Turning the ops into entries, splitting them by the model's
    ``partition`` and searching all happen in :func:`check_key`, in a worker
    process when there are many keys."""

    label: str
    model: Model
    slots: list[Slot]
    independent: bool
    history: Sequence[Any]


def _tasks(history: Sequence[Any], model: Model, independent: bool) -> list[Task]:
    parts = pair_by_key(history, independent=independent)
    return [
        Task("" if key is None else str(jsonable(key)), model, slots, independent, history)
        for key, slots in parts.items()
    ]


def check_key(task: Task, *, deadline: float, max_configs: int) -> list[tuple[str, dict[str, Any]]]:
    """Check one task: (label, result) for it, or for each part of it."""
    model = task.model
    if type(model) in (Register, CASRegister):
        # The common case, fused: slots straight to int arrays.
        t0 = time.perf_counter()
        if not task.slots:
            d = _counts(task.slots)
            d["seconds"] = 0.0
            return [(task.label, d)]
        try:
            built = build_register_slots(
                task.slots,
                task.history,
                model,
                independent=task.independent,
                defer_precheck=True,
            )
        except ModelError as e:
            d = _counts(task.slots)
            d.update(valid="unknown", error=str(e), seconds=time.perf_counter() - t0)
            return [(task.label, d)]
        d = {"valid": True, "op_count": len(task.slots), "pending_count": built.pending}
        return [
            (task.label, _check_built(built, d, t0, deadline=deadline, max_configs=max_configs))
        ]
    entries = to_entries(task.slots, task.history, independent=task.independent)
    try:
        groups = model.partition([(e.f, e.value) for e in entries])
    except ModelError as e:
        return [
            (
                task.label,
                {
                    "valid": "unknown",
                    "error": str(e),
                    "op_count": len(entries),
                    "pending_count": sum(1 for e in entries if e.cpos < 0),
                },
            )
        ]
    if groups is None:
        return [
            (task.label, check_task(entries, model, deadline=deadline, max_configs=max_configs))
        ]
    out = []
    for i, g in enumerate(groups):
        es = [entries[j] for j in g]
        sub, calls = model.part_model([(e.f, e.value) for e in es])
        name = _part_name(es, i)
        label = f"{task.label}/{name}" if task.label else name
        es = [_with(e, c) for e, c in zip(es, calls, strict=True)]
        out.append((label, check_task(es, sub, deadline=deadline, max_configs=max_configs)))
    return out


def _with(e: Entry, call: tuple[str, Any]) -> Entry:
    return Entry(e.call, e.ret, call[0], call[1], e.src, e.ipos, e.cpos)


def _part_name(es: list[Entry], i: int) -> str:
    # Parts of a kv history are named by their key.
    v = es[0].value if es else None
    if isinstance(v, tuple) and len(v) == 2:
        k = v[0]
        if all(isinstance(e.value, tuple) and len(e.value) == 2 and e.value[0] == k for e in es):
            return str(jsonable(k))
    return str(i)


def check_task(
    entries: list[Entry], model: Model, *, deadline: float, max_configs: int, reduce: bool = True
) -> dict[str, Any]:
    """Check one part; a JSON-ready dict with ``valid`` and details."""
    t0 = time.perf_counter()
    d: dict[str, Any] = {
        "valid": True,
        "op_count": len(entries),
        "pending_count": sum(1 for e in entries if e.cpos < 0),
    }
    if not entries:
        d["seconds"] = 0.0
        return d
    try:
        built = build(entries, model, reduce=reduce)
    except ModelError as e:
        d.update(valid="unknown", error=str(e), seconds=time.perf_counter() - t0)
        return d
    return _check_built(built, d, t0, deadline=deadline, max_configs=max_configs)


def _counts(slots: list[Slot]) -> dict[str, Any]:
    return {
        "valid": True,
        "op_count": len(slots),
        "pending_count": list(map(itemgetter(1), slots)).count(-1),
    }


def _check_built(
    built: Built, d: dict[str, Any], t0: float, *, deadline: float, max_configs: int
) -> dict[str, Any]:
    """Search a built part; fills and returns ``d``."""
    p = built.problem
    d["searched_pending"] = len(p.pcall)
    quick = None
    if built.precheck is not None:
        # A short search first: it proves most valid parts at once, and then
        # the pre-check, which only ever finds violations, is not needed.
        m = len(p.ccall) + len(p.pcall)
        quick = solve(
            p,
            deadline=min(deadline, time.perf_counter() + QUICK_SEARCH_SECONDS),
            max_configs=min(max_configs, QUICK_SEARCH_CONFIGS_PER_OP * m + 1000),
        )
        if quick.valid is True:
            d["configs_explored"] = quick.configs
            d["seconds"] = time.perf_counter() - t0
            return d
        built.violation = built.precheck()
        built.precheck = None
        if built.violation is None and quick.valid is False:
            d["configs_explored"] = quick.configs
            d["valid"] = False
            d.update(explain(built, quick))
            d["seconds"] = time.perf_counter() - t0
            return d
    if built.violation is not None:
        # Proved without search; a short search may still explain it with states.
        if quick is not None and quick.valid is False:
            out = quick
        else:
            out = solve(
                p, deadline=min(deadline, time.perf_counter() + 0.05), max_configs=max_configs
            )
        d["valid"] = False
        if out.valid is False:
            d.update(explain(built, out))
            d["reason"] = built.violation[1]
        else:
            d.update(explain_violation(built, *built.violation))
        d["seconds"] = time.perf_counter() - t0
        return d
    try:
        out = solve(p, deadline=deadline, max_configs=max_configs)
    except ModelError as e:
        d.update(valid="unknown", error=str(e), seconds=time.perf_counter() - t0)
        return d
    d["configs_explored"] = out.configs
    if out.valid is None:
        d["valid"] = "unknown"
        d["cause"] = out.reason
    elif out.valid is False:
        d["valid"] = False
        d.update(explain(built, out))
    d["seconds"] = time.perf_counter() - t0
    return d


# Worker processes are forked with the tasks already in memory: nothing big is pickled.
_WORK: list[Task] = []
_WORK_LOCK = threading.Lock()


def _work(
    idx: list[int], deadline: float, max_configs: int
) -> list[tuple[int, list[tuple[str, dict[str, Any]]]]]:
    return [(i, check_key(_WORK[i], deadline=deadline, max_configs=max_configs)) for i in idx]


def _run_tasks(
    tasks: list[Task], *, deadline: float, max_configs: int, processes: int | None
) -> list[tuple[str, dict[str, Any]]]:
    total = sum(len(t.slots) for t in tasks)
    workers = processes if processes is not None else CPUS
    use_pool = (
        workers > 1
        and len(tasks) >= PARALLEL_MIN_PARTS
        and (total >= PARALLEL_MIN_OPS or processes is not None)
        # With other threads running, check here only (see can_fork).
        and can_fork()
    )
    if not use_pool:
        mc = max_configs * max(1, workers)
        return [r for t in tasks for r in check_key(t, deadline=deadline, max_configs=mc)]
    global _WORK
    # Balance by op count: biggest first, each to the lightest chunk.
    nchunks = min(len(tasks), workers * 32)
    chunks: list[list[int]] = [[] for _ in range(nchunks)]
    loads = [0] * nchunks
    for i in sorted(range(len(tasks)), key=lambda i: -len(tasks[i].slots)):
        j = loads.index(min(loads))
        chunks[j].append(i)
        loads[j] += len(tasks[i].slots)
    results: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in tasks]
    with _WORK_LOCK:
        _WORK = tasks
        try:
            _fork_pool(chunks, results, workers, deadline, max_configs)
        finally:
            _WORK = []
    return [r for rs in results for r in rs]


def _fork_pool(
    chunks: list[list[int]],
    results: list[list[tuple[str, dict[str, Any]]]],
    workers: int,
    deadline: float,
    max_configs: int,
) -> None:
    """``workers - 1`` forked processes plus this one take chunks one at a
    time from a shared counter, so all finish at about the same time; each
    child sends its results back through a pipe when the chunks run out.

    (A process pool hands a worker its next chunks before it asks, and this
    process could not take them back: it sat idle while the worker finished
    a queue of them.)"""
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("i", 0)
    n = len(chunks)

    def claim() -> int:
        with counter.get_lock():
            i = int(counter.value)
            counter.value = i + 1
        return i

    children: list[Child] = []
    try:
        for _ in range(workers - 1):
            children.append(fork_call(_child_work, claim, chunks, deadline, max_configs))
        while (i := claim()) < n:
            for j, res in _work(chunks[i], deadline, max_configs):
                results[j] = res
        for child in children:
            for j, res in child.result():
                results[j] = res
    finally:
        for child in children:  # interrupted or failed: stop the rest
            child.cancel()


def _child_work(
    claim: Any, chunks: list[list[int]], deadline: float, max_configs: int
) -> list[tuple[int, list[tuple[str, dict[str, Any]]]]]:  # pragma: no cover - in a child
    out: list[tuple[int, list[tuple[str, dict[str, Any]]]]] = []
    while (i := claim()) < len(chunks):
        out.extend(_work(chunks[i], deadline, max_configs))
    return out


class Linearizable:
    """The linearizability checker; build it with :func:`linearizable`."""

    def __init__(
        self,
        model: str | Model,
        *,
        independent: bool = False,
        time_limit: float | None = None,
        memory_limit_mb: int | None = None,
        processes: int | None = None,
    ) -> None:
        self.model = as_model(model)
        self.independent = independent
        self.time_limit = time_limit
        self.memory_limit_mb = memory_limit_mb
        self.processes = processes
        if time_limit is not None and time_limit <= 0:
            raise ConfigError(f"time_limit must be positive seconds, got {time_limit!r}")
        if memory_limit_mb is not None and memory_limit_mb <= 0:
            raise ConfigError(f"memory_limit_mb must be positive, got {memory_limit_mb!r}")
        if processes is not None and processes < 1:
            raise ConfigError(f"processes must be at least 1, got {processes!r}")

    def __repr__(self) -> str:
        args = [repr(self.model.name)]
        if self.independent:
            args.append("independent=True")
        if self.time_limit is not None:
            args.append(f"time_limit={self.time_limit!r}")
        return f"linearizable({', '.join(args)})"

    def check(self, test: Test | None, history: History, opts: Mapping[str, Any]) -> Result:
        # The check allocates many small objects that all live until it ends:
        # cyclic GC passes over them would only cost time.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._check(history, opts)
        finally:
            if was_enabled:
                gc.enable()

    def _check(self, history: History, opts: Mapping[str, Any]) -> Result:
        t0 = time.perf_counter()
        limit = opts.get("time_limit", self.time_limit)
        deadline = t0 + limit if limit is not None else float("inf")
        mem_mb = self.memory_limit_mb or _default_memory_mb()
        workers = self.processes or CPUS
        max_configs = max(1000, mem_mb * 1024 * 1024 // BYTES_PER_CONFIG // workers)
        tasks = _tasks(history, self.model, self.independent)
        labelled = _run_tasks(
            tasks, deadline=deadline, max_configs=max_configs, processes=self.processes
        )
        results = [r for _, r in labelled]
        details: dict[str, Any] = {
            "model": self.model.name,
            "op_count": sum(r["op_count"] for r in results),
            "pending_count": sum(r["pending_count"] for r in results),
        }
        valid = merge_valid([r["valid"] for r in results])
        error = None
        if valid == "unknown":
            bad = next(r for r in results if r["valid"] == "unknown")
            if "error" in bad:
                error = bad["error"]
            elif bad.get("cause") == "memory":
                error = f"memory limit of {mem_mb} MB reached"
            else:
                error = f"timeout after {limit} s"
        multi = len(labelled) > 1 or any(label for label, _ in labelled)
        if multi:
            details["keys"] = dict(labelled)
            failures = [label for label, r in labelled if r["valid"] is False]
            details["failures"] = failures
            # Keep the result small however many keys fail: full explanations
            # for the first few failing keys only.
            for label in failures[MAX_EXPLAINED_KEYS:]:
                r = details["keys"][label]
                for k in ("configs", "final_paths"):
                    r.pop(k, None)
            if failures:
                first = details["keys"][failures[0]]
                details["key"] = failures[0]
                for k in ("op", "previous_ok", "configs", "final_paths", "reason"):
                    if k in first:
                        details[k] = first[k]
        elif results:
            r = results[0]
            for k, v in r.items():
                if k not in ("valid", "error", "seconds", "op_count", "pending_count"):
                    details[k] = v
        seconds = time.perf_counter() - t0
        log.debug(
            "linearizable(%s): %s, %d parts, %d ops, %.3f s",
            self.model.name,
            valid,
            len(labelled),
            details["op_count"],
            seconds,
        )
        return Result(valid=valid, details=details, error=error, seconds=seconds)


def linearizable(
    model: str | Model = "cas-register",
    *,
    independent: bool = False,
    time_limit: float | None = None,
    memory_limit_mb: int | None = None,
    processes: int | None = None,
) -> Linearizable:
    """A checker for linearizability against ``model`` (a name in ``MODELS`` or a Model).

    ``independent``: split ``[key value]`` ops by key and check each key alone.
    ``time_limit`` (seconds, ``opts["time_limit"]`` overrides) and
    ``memory_limit_mb`` bound the search; running out gives ``"unknown"``.
    ``processes``: worker processes for many parts (default: one per core,
    used only when it pays)."""
    return Linearizable(
        model,
        independent=independent,
        time_limit=time_limit,
        memory_limit_mb=memory_limit_mb,
        processes=processes,
    )
