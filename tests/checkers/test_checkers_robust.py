"""Every checker of this family survives any well-formed history (no exception,
JSON-ready details), whatever values and f's it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jepsy.checkers.bank import bank
from jepsy.checkers.core import Checker
from jepsy.checkers.counter import counter
from jepsy.checkers.exceptions import exceptions
from jepsy.checkers.independent import independent
from jepsy.checkers.perf import perf
from jepsy.checkers.queue import queue, total_queue
from jepsy.checkers.set import set_checker, set_full
from jepsy.checkers.stats import stats
from jepsy.checkers.timeline import timeline
from jepsy.checkers.unique_ids import unique_ids
from jepsy.core import noop_test
from jepsy.history import History

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=6,
)
fs = st.sampled_from(["add", "read", "enqueue", "dequeue", "drain", "generate", "transfer", "x"])

CHECKERS: list[Checker] = [
    set_checker(),
    set_full(linearizable=True),
    counter(),
    queue(),
    total_queue(),
    unique_ids(),
    bank(),
    stats(),
    exceptions(),
    perf(),
    timeline(limit=20),
    independent(set_checker()),
    independent(counter()),
]


@st.composite
def histories(draw: Any) -> History:
    ops: list[dict[str, Any]] = []
    busy: dict[int, dict[str, Any]] = {}
    t = 0
    for _ in range(draw(st.integers(0, 16))):
        t += draw(st.integers(0, 3_000_000))
        p = draw(st.integers(0, 2))
        if draw(st.integers(0, 9)) == 0:
            ops.append(
                {
                    "process": "nemesis",
                    "type": "info",
                    "f": draw(fs),
                    "value": draw(values),
                    "time": t,
                }
            )
            continue
        if p in busy:
            inv = busy.pop(p)
            typ = draw(st.sampled_from(["ok", "fail", "info"]))
            err = draw(values) if typ != "ok" else None
            ops.append({**inv, "type": typ, "value": draw(values), "error": err, "time": t})
        else:
            busy[p] = {
                "process": p,
                "type": "invoke",
                "f": draw(fs),
                "value": draw(values),
                "time": t,
            }
            ops.append(busy[p])
    # A process that got info is retired: give later ops of it a fresh id.
    gen: dict[int, int] = {}
    out = []
    for o in ops:
        if o["process"] == "nemesis":
            out.append(o)
            continue
        q = o["process"]
        out.append({**o, "process": q + 3 * gen.get(q, 0)})
        if o["type"] == "info":
            gen[q] = gen.get(q, 0) + 1
    return History.from_dicts(out)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(histories())
def test_checkers_never_raise_and_details_are_json(tmp_path: Path, h: History) -> None:
    for c in CHECKERS:
        r = c.check(noop_test(), h, {"dir": tmp_path})
        assert r.valid in (True, False, "unknown"), c
        json.dumps(r.to_json(), allow_nan=False)
