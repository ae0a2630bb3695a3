"""Clock faults: ``clock-bump``, ``clock-strobe``, ``clock-reset``.

Two ways to skew a node's wall clock, chosen by what the DB declares through
:class:`SupportsClockSkew`:

- ``"shim"`` (namespaces, containers and SSH hosts alike): the DB launches
  its daemon with :func:`clock_env` in its environment, i.e.
  ``LD_PRELOAD=<clockshim.so>`` and ``JEPSY_CLOCK_FILE=<file>``.  The shim
  (``clockshim.c``, shipped as source and compiled on the node with gcc, or
  on the control node and uploaded when the node has no compiler) adds the
  offset in that per-node file to every ``CLOCK_REALTIME`` reading of the
  process; the nemesis skews a node by rewriting its file.  Only
  dynamically linked programs that read the clock through libc are
  affected (Redis yes; Go binaries such as etcd read it through the vDSO
  and are not).
- ``"system"`` (real, disposable SSH hosts only, opt-in with
  ``system_clock=True``): the node's real clock is set with ``date -s``, as
  Jepsen does.  Never on ``local`` or ``docker`` remotes: their nodes share
  this machine's clock.

A DB that does not implement :class:`SupportsClockSkew` (or the short form,
a boolean ``supports_clock`` attribute), or answers None / False (e.g. etcd
here), makes :func:`package` raise :class:`ConfigError` up front.  A DB that
says ``"shim"`` must really launch its daemon with :func:`clock_env` (or
:func:`daemon_env`, which adds it only when the test runs the clock
nemesis), or the skew has no effect.

Ops (process ``"nemesis"``), all completing ``info``:

- ``{"f": "clock-bump", "value": {"nodes": "minority", "delta": 12.5}}`` or
  ``{"n1": 12.5, "n3": -4}``: add ``delta`` seconds to the chosen nodes'
  clocks.  Value ``{"bumped": {node: delta}, "offsets": {node: total}}``.
- ``{"f": "clock-strobe", "value": {"nodes": "one", "delta": 8,
  "period": 0.05, "duration": 10}}``: for ``duration`` s, the clock jumps by
  ``delta`` every ``period`` s and back.  (Shim: in the background, the op
  returns at once; system: the op lasts ``duration``.)
- ``{"f": "clock-reset"}`` (or a node list / ``{"nodes": ...}``): offsets
  back to 0.  ``teardown`` resets every node.

By example::

    class RedisDB:  # a DB suite
        def clock_skew_support(self): return "shim"
        def setup(self, test, node):
            env = daemon_env(test, node)   # the shim's env when --nemesis has clock
            test.remote.spawn(node, ["redis-server", ...], env=env, log=...)

    pkg = package(db=RedisDB(), interval=10)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import random
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

from jepsy import generator as gen
from jepsy.control import Remote
from jepsy.db import DB
from jepsy.errors import ConfigError, SetupError
from jepsy.nemeses.core import (
    NODE_SELECTORS,
    Package,
    check_selectors,
    error_text,
    nemesis_rng,
    node_errors,
    plot_entry,
    select_nodes,
    toggle_schedule,
)
from jepsy.net import on_nodes, try_on_nodes

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op

log = logging.getLogger(__name__)

ClockSupport: TypeAlias = Literal["shim", "system"]

BUMP = "clock-bump"
STROBE = "clock-strobe"
RESET = "clock-reset"
COLOR = "#A0E9DB"
ENV_FILE = "JEPSY_CLOCK_FILE"
SHIM_SOURCE = Path(__file__).with_name("clockshim.c")


@runtime_checkable
class SupportsClockSkew(Protocol):
    """A DB that says how its nodes' clocks can be skewed.

    ``"shim"``: its daemon is dynamically linked and launched with
    :func:`clock_env`; ``"system"``: only the node's real clock affects it
    (allowed on disposable SSH hosts with ``system_clock=True``); None:
    it cannot be skewed here."""

    def clock_skew_support(self) -> ClockSupport | None: ...


def clock_mode(db: DB | None, *, system_clock: bool = False) -> ClockSupport:
    """The skew mechanism to use for ``db``; ConfigError when there is none."""
    if db is None:
        raise ConfigError(
            "nemesis 'clock' needs the DB to know how to skew its clock; no DB was given"
        )
    if not isinstance(db, SupportsClockSkew) and isinstance(
        getattr(db, "supports_clock", None), bool
    ):
        # The short form DB suites may use: supports_clock = True means the shim.
        if getattr(db, "supports_clock", False):
            return "shim"
        raise ConfigError(
            f"nemesis 'clock' is not supported by {db!r}: the DB says its clock cannot be "
            "skewed here (e.g. a Go binary reads the clock through the vDSO, so the "
            "LD_PRELOAD shim has no effect); drop 'clock' from --nemesis"
        )
    if not isinstance(db, SupportsClockSkew):
        raise ConfigError(
            f"nemesis 'clock' is not supported by {db!r}: the DB does not declare "
            "clock_skew_support() (hint: return 'shim' and launch the daemon with "
            "jepsy.nemeses.clock.clock_env(remote, node) if it is dynamically linked)"
        )
    support = db.clock_skew_support()
    if support is None:
        raise ConfigError(
            f"nemesis 'clock' is not supported by {db!r}: its daemon's wall clock cannot be "
            "skewed on this setup (e.g. a Go binary reads the clock through the vDSO, so "
            "the LD_PRELOAD shim has no effect); drop 'clock' from --nemesis"
        )
    if support == "shim":
        return "shim"
    if support == "system":
        if not system_clock:
            raise ConfigError(
                f"nemesis 'clock' for {db!r} would have to set the nodes' real clocks "
                "(date -s); that is opt-in: pass system_clock=True, and only against "
                "disposable SSH hosts (namespaces and containers share this machine's clock)"
            )
        return "system"
    raise ConfigError(
        f"{db!r}.clock_skew_support() returned {support!r}; expected 'shim', 'system' or None"
    )


# ---------------------------------------------------------------------------
# The shim on a node
# ---------------------------------------------------------------------------

_build_lock = threading.Lock()
_local_builds: dict[str, bytes] = {}


def _digest() -> str:
    return hashlib.sha256(SHIM_SOURCE.read_bytes()).hexdigest()[:12]


def shim_dir(remote: Remote, node: str) -> str:
    return f"{remote.node_dir(node)}/jepsy-clock"


def clock_file(remote: Remote, node: str) -> str:
    """The file holding ``node``'s clock offset (read by the shim)."""
    return f"{shim_dir(remote, node)}/offset"


def shim_path(remote: Remote, node: str) -> str:
    return f"{shim_dir(remote, node)}/clockshim-{_digest()}.so"


def _build_locally() -> bytes:
    """Compile the shim on the control node (for nodes without a compiler)."""
    key = _digest()
    with _build_lock:
        if key in _local_builds:
            return _local_builds[key]
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise SetupError(
                "the clock shim must be compiled, but neither the node nor the control "
                "node has gcc (hint: apt-get install gcc on either)"
            )
        with tempfile.TemporaryDirectory(prefix="jepsy-clockshim-") as tmp:
            so = Path(tmp) / "clockshim.so"
            p = subprocess.run(
                [cc, "-O2", "-shared", "-fPIC", "-o", str(so), str(SHIM_SOURCE)],
                capture_output=True,
                timeout=120,
                check=False,
            )
            if p.returncode != 0:
                raise SetupError(
                    f"compiling {SHIM_SOURCE} on the control node failed: "
                    f"{p.stderr.decode(errors='replace').strip()}"
                )
            data = so.read_bytes()
        _local_builds[key] = data
        return data


def install_shim(remote: Remote, node: str, *, timeout: float = 120.0) -> str:
    """Make sure the compiled shim is on ``node``; return its path there.

    Idempotent (the file name carries a hash of the source).  Compiles on the
    node with gcc when it has one, else on the control node (same machine
    architecture required) and uploads the library."""
    d = shim_dir(remote, node)
    so = shim_path(remote, node)
    probe = remote.exec(
        node,
        [
            "sh",
            "-c",
            'mkdir -p "$1" || exit 2; test -s "$2" && echo present; '
            "command -v gcc >/dev/null 2>&1 && echo gcc; uname -m",
            "jepsy-clock",
            d,
            so,
        ],
        timeout=timeout,
    )
    words = probe.out.split()
    if "present" in words:
        return so
    src = f"{d}/clockshim-{_digest()}.c"
    tmp_so = f"{so}.tmp{os.getpid()}"
    if "gcc" in words:
        remote.upload(node, SHIM_SOURCE, src)
        remote.exec(
            node,
            [
                "sh",
                "-c",
                'gcc -O2 -shared -fPIC -o "$1" "$2" && mv -f "$1" "$3"',
                "cc",
                tmp_so,
                src,
                so,
            ],
            timeout=timeout,
        )
        return so
    arch = words[-1] if words else ""
    if arch != platform.machine():
        raise SetupError(
            f"node {node!r} has no gcc and its architecture {arch!r} differs from the "
            f"control node's {platform.machine()!r}, so the clock shim cannot be built for it "
            "(hint: install gcc on the node)"
        )
    data = _build_locally()
    with tempfile.NamedTemporaryFile(prefix="jepsy-clockshim-", suffix=".so") as f:
        f.write(data)
        f.flush()
        remote.upload(node, f.name, tmp_so)
    remote.exec(node, ["mv", "-f", tmp_so, so], timeout=timeout)
    return so


_WRITE = 'cat > "$1.tmp" && mv -f "$1.tmp" "$1"'


def write_offset(
    remote: Remote,
    node: str,
    offset: float,
    *,
    strobe: tuple[float, float, float] | None = None,
    timeout: float = 30.0,
) -> None:
    """Set ``node``'s shim offset to ``offset`` seconds (atomically).

    ``strobe=(delta, period, duration)`` adds ``delta`` every other
    ``period`` seconds for ``duration`` seconds from now (the node's real
    clock)."""
    path = clock_file(remote, node)
    if strobe is None:
        remote.exec(
            node, ["sh", "-c", _WRITE, "jepsy-clock", path], stdin=f"{offset:.9f}\n".encode()
        )
        return
    delta, period, duration = strobe
    if period <= 0 or duration < 0:
        raise ConfigError(f"clock-strobe needs period > 0 and duration >= 0; got {strobe!r}")
    remote.exec(
        node,
        [
            "sh",
            "-c",
            'printf "%s %s %s %s\\n" "$2" "$3" "$4" "$(( $(date +%s) + $5 ))" > "$1.tmp" '
            '&& mv -f "$1.tmp" "$1"',
            "jepsy-clock",
            path,
            f"{offset:.9f}",
            f"{delta:.9f}",
            f"{period:.9f}",
            str(int(duration + 0.999)),
        ],
        timeout=timeout,
    )


def shim_in_use(remote: Remote, node: str, *, timeout: float = 30.0) -> bool:
    """True when some process on ``node`` has ``node``'s shim loaded (it
    shows in ``/proc/PID/maps``) or its clock file in its environment, i.e.
    was launched with :func:`clock_env`.  (Both are checked: a daemon that
    rewrites its process title, as Redis does, may clobber its environ.)"""
    r = remote.exec(
        node,
        [
            "sh",
            "-c",
            'grep -lsF -- "$3" /proc/[0-9]*/maps 2>/dev/null | head -n 1; '
            'grep -alsF -- "$1=$2" /proc/[0-9]*/environ 2>/dev/null | head -n 1',
            "jepsy-clock",
            ENV_FILE,
            clock_file(remote, node),
            shim_path(remote, node),
        ],
        timeout=timeout,
        check=False,
    )
    return bool(r.out.strip())


def clock_env(remote: Remote, node: str) -> dict[str, str]:
    """The environment a DB suite launches its daemon with so that the clock
    nemesis can skew it: ``LD_PRELOAD`` and ``JEPSY_CLOCK_FILE``.

    Installs the shim on ``node`` if needed and creates the offset file (0)
    if missing; an existing offset is kept, so a daemon restarted during a
    clock fault stays skewed."""
    so = install_shim(remote, node)
    path = clock_file(remote, node)
    remote.exec(
        node, ["sh", "-c", '[ -e "$1" ] || printf "0\\n" > "$1"', "jepsy-clock", path], timeout=30
    )
    return {"LD_PRELOAD": so, ENV_FILE: path}


def wants_clock(test: Test) -> bool:
    """True when the test's spec asks for the clock nemesis (``"clock"`` among
    ``spec["nemesis"]``, a list or a comma-separated string)."""
    names = test.spec.get("nemesis") if test.spec else None
    if names is None:
        return False
    items = names.split(",") if isinstance(names, str) else list(names)
    return any(str(n).strip().lower() == "clock" for n in items)


def daemon_env(test: Test, node: str) -> dict[str, str]:
    """What a DB suite adds to its daemon's environment on ``node``:
    :func:`clock_env` when the test runs the clock nemesis, else nothing."""
    return clock_env(test.remote, node) if wants_clock(test) else {}


# ---------------------------------------------------------------------------
# System clock (real SSH hosts only)
# ---------------------------------------------------------------------------

_BUMP_SYSTEM = (
    'now=$(date +%s.%N) && t=$(echo "$now" | awk -v d="$1" \'{printf "%.9f", $1 + d}\') '
    '&& date -s "@$t" >/dev/null'
)
_STROBE_SYSTEM = (
    "bump() { now=$(date +%s.%N); "
    't=$(echo "$now" | awk -v d="$1" \'{printf "%.9f", $1 + d}\'); date -s "@$t" >/dev/null; }; '
    'i=0; while [ "$i" -lt "$4" ]; do bump "$1"; sleep "$3"; bump "$2"; sleep "$3"; '
    "i=$((i+1)); done"
)


def _system_bump(remote: Remote, node: str, delta: float) -> None:
    remote.exec(node, ["sh", "-c", _BUMP_SYSTEM, "jepsy-clock", f"{delta:.9f}"], timeout=30)


def _refuse_shared_clock(remote: Remote) -> None:
    kind = getattr(remote, "kind", None)
    if kind != "ssh":
        raise ConfigError(
            f"nemesis 'clock' in system mode sets the nodes' real clocks, which only SSH hosts "
            f"have to themselves; {remote!r} (kind {kind!r}) could set the real clock of "
            "this machine: use the shim, or real SSH hosts"
        )


# ---------------------------------------------------------------------------
# The nemesis
# ---------------------------------------------------------------------------


class ClockNemesis:
    """Skews node clocks through the shim file or (opt-in) the real clock.

    In shim mode, ``setup`` checks that some process on every node runs with
    the node's clock file in its environment (the DB's daemon, launched with
    :func:`clock_env`) and raises ConfigError otherwise, since the skew
    would have no effect; ``require_shim=False`` skips that check."""

    def __init__(
        self, *, mode: ClockSupport = "shim", db: DB | None = None, require_shim: bool = True
    ) -> None:
        if mode not in ("shim", "system"):
            raise ConfigError(f"clock mode must be 'shim' or 'system'; got {mode!r}")
        self.mode: ClockSupport = mode
        self.db = db
        self.require_shim = require_shim
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._offsets: dict[str, float] = {}

    def setup(self, test: Test) -> ClockNemesis:
        n = ClockNemesis(mode=self.mode, db=self.db, require_shim=self.require_shim)
        n._rng = nemesis_rng(test, "clock")
        if self.mode == "system":
            _refuse_shared_clock(test.remote)
        else:

            def prepare(node: str) -> bool:
                install_shim(test.remote, node)
                write_offset(test.remote, node, 0.0)
                return shim_in_use(test.remote, node)

            used = on_nodes(list(test.nodes), prepare)
            missing = [node for node, ok in used.items() if not ok]
            if missing and self.require_shim:
                raise ConfigError(
                    f"nemesis 'clock': no process on {', '.join(missing)} runs under the clock "
                    f"shim, so skewing would have no effect on {self.db!r}; hint: the DB suite "
                    "must launch its daemon with jepsy.nemeses.clock.daemon_env(test, node) "
                    "(or clock_env(remote, node)) in its environment"
                )
        return n

    def fs(self) -> Set[str]:
        return frozenset((BUMP, STROBE, RESET))

    @property
    def offsets(self) -> dict[str, float]:
        with self._lock:
            return dict(self._offsets)

    def _select(self, test: Test, spec: Any) -> list[str]:
        with self._lock:
            return select_nodes(spec, list(test.nodes), self._rng)

    def _bump_plan(self, test: Test, value: Any) -> dict[str, float]:
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"clock-bump value must be {{'nodes': selector, 'delta': s}} or "
                f"{{node: delta}}; got {value!r}"
            )
        if "delta" in value:
            delta = float(value["delta"])
            return {n: delta for n in self._select(test, value.get("nodes"))}
        plan = {str(k): float(v) for k, v in value.items()}
        self._select(test, list(plan))  # validates the names
        return plan

    def invoke(self, test: Test, op: Op) -> Op:
        try:
            if op.f == BUMP:
                return self._bump(test, op)
            if op.f == STROBE:
                return self._strobe(test, op)
            if op.f == RESET:
                return self._reset(test, op)
        except (ConfigError, ValueError, TypeError) as e:
            return op.replace(type="info", error=f"nothing done: {error_text(e)}")
        return op.replace(type="info", error=f"clock nemesis cannot handle f {op.f!r}")

    def _set(self, test: Test, node: str, offset: float) -> None:
        if self.mode == "shim":
            write_offset(test.remote, node, offset)
        else:
            with self._lock:
                current = self._offsets.get(node, 0.0)
            _system_bump(test.remote, node, offset - current)
        with self._lock:
            self._offsets[node] = offset

    def _bump(self, test: Test, op: Op) -> Op:
        plan = self._bump_plan(test, op.value)
        with self._lock:
            targets = {n: self._offsets.get(n, 0.0) + d for n, d in plan.items()}
        ok, errors = try_on_nodes(targets, lambda n: self._set(test, n, targets[n]))
        value = {
            "bumped": {n: plan[n] for n in sorted(ok)},
            "offsets": {n: targets[n] for n in sorted(ok)},
        }
        return op.replace(type="info", value=value, error=node_errors(errors))

    def _strobe(self, test: Test, op: Op) -> Op:
        v = op.value
        if not isinstance(v, Mapping) or "delta" not in v:
            raise ConfigError(
                "clock-strobe value must be {'nodes': selector, 'delta': s, 'period': s, "
                f"'duration': s}}; got {v!r}"
            )
        delta = float(v["delta"])
        period = float(v.get("period", 0.05))
        duration = float(v.get("duration", 10.0))
        if period <= 0 or duration < 0:
            raise ConfigError(f"clock-strobe needs period > 0 and duration >= 0; got {v!r}")
        nodes = self._select(test, v.get("nodes"))

        def strobe(node: str) -> None:
            with self._lock:
                base = self._offsets.get(node, 0.0)
            if self.mode == "shim":
                write_offset(test.remote, node, base, strobe=(delta, period, duration))
            else:
                count = max(1, int(duration / (2 * period)))
                test.remote.exec(
                    node,
                    [
                        "sh",
                        "-c",
                        _STROBE_SYSTEM,
                        "jepsy-clock",
                        f"{delta:.9f}",
                        f"{-delta:.9f}",
                        f"{period:.9f}",
                        str(count),
                    ],
                    timeout=duration + 60,
                )

        ok, errors = try_on_nodes(nodes, strobe)
        value = {
            "strobed": sorted(ok),
            "delta": delta,
            "period": period,
            "duration": duration,
        }
        return op.replace(type="info", value=value, error=node_errors(errors))

    def _reset(self, test: Test, op: Op) -> Op:
        v = op.value
        if isinstance(v, Mapping):
            v = v.get("nodes")
        nodes = list(test.nodes) if v is None else self._select(test, v)
        if self.mode == "system":
            nodes = [n for n in nodes if self.offsets.get(n, 0.0) != 0.0]
        ok, errors = try_on_nodes(nodes, lambda n: self._set(test, n, 0.0))
        return op.replace(type="info", value={"reset": sorted(ok)}, error=node_errors(errors))

    def teardown(self, test: Test) -> None:
        nodes = list(test.nodes)
        if self.mode == "system":
            nodes = [n for n in nodes if self.offsets.get(n, 0.0) != 0.0]
        _, errors = try_on_nodes(nodes, lambda n: self._set(test, n, 0.0))
        if errors:
            node, e = next(iter(errors.items()))
            raise SetupError(f"clock teardown: reset failed on {node}: {e}") from e

    def __repr__(self) -> str:
        return f"ClockNemesis(mode={self.mode!r})"


def remove_shim(remote: Remote, node: str) -> None:
    """Delete the shim, its build and the offset file from ``node``."""
    with contextlib.suppress(Exception):
        remote.exec(node, ["rm", "-rf", shim_dir(remote, node)], timeout=30)


def package(
    *,
    db: DB | None,
    interval: float = 10.0,
    targets: Sequence[str] | None = None,
    nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5"),
    system_clock: bool = False,
    lead: float | None = None,
) -> Package:
    """Every ``interval`` seconds bump or strobe the clocks of nodes chosen by
    a selector from ``targets`` (deltas from 0.25 s to 256 s either way),
    reset them ``interval`` seconds later; reset all at the end.

    Raises ConfigError up front when the DB's clock cannot be skewed."""
    mode = clock_mode(db, system_clock=system_clock)
    sel = [s for s in check_selectors("clock", targets, db=db, nodes=nodes) if s != "primaries"]
    if not sel:
        raise ConfigError(
            "nemesis 'clock' cannot target 'primaries' (clock ops name their nodes up "
            f"front); add one of {', '.join(s for s in NODE_SELECTORS if s != 'primaries')}"
        )
    choices = tuple(sel)

    def fault(test: Test, ctx: gen.Context) -> dict[str, Any]:
        rng = ctx.rng
        target = rng.choice(choices)
        delta = rng.choice((-1.0, 1.0)) * 2 ** rng.uniform(-2.0, 8.0)
        if rng.random() < 0.5:
            return {"f": BUMP, "value": {"nodes": target, "delta": round(delta, 3)}}
        return {
            "f": STROBE,
            "value": {
                "nodes": target,
                "delta": round(delta, 3),
                "period": round(2 ** rng.uniform(-6.0, 0.0), 4),
                "duration": interval,
            },
        }

    fault.__qualname__ = f"random_clock_fault({list(choices)!r})"
    g = toggle_schedule(interval, fault, {"f": RESET}, lead=lead)
    return Package(
        nemesis=ClockNemesis(mode=mode, db=db),
        generator=g,
        final_generator=gen.nemesis({"f": RESET}),
        plot={"clock": plot_entry(COLOR, "clock", [BUMP, STROBE], [RESET])},
    )


__all__ = [
    "BUMP",
    "ENV_FILE",
    "RESET",
    "SHIM_SOURCE",
    "STROBE",
    "ClockNemesis",
    "ClockSupport",
    "SupportsClockSkew",
    "clock_env",
    "clock_file",
    "clock_mode",
    "daemon_env",
    "install_shim",
    "package",
    "remove_shim",
    "shim_in_use",
    "shim_path",
    "wants_clock",
    "write_offset",
]
