"""Network partitions and packet loss as iptables rules, over any remote.

A partition is a **grudge**: ``node -> the nodes it drops packets from``.
Grudges are plain values made by small pure functions (:func:`one`,
:func:`halves`, :func:`random_halves`, :func:`majority`,
:func:`minority_third`, :func:`majorities_ring`, :func:`bridge`,
:func:`primaries`), so a strategy is tested without any network.

:func:`partition` applies a grudge the way Jepsen does: on every node, an
``INPUT`` DROP rule per address it holds a grudge against.  jepsy keeps its
rules in a dedicated chain (``JEPSY``) that ``INPUT`` jumps to, so
:func:`heal` removes exactly what jepsy added (flush, unhook, delete the
chain) and nothing else; healing twice is harmless.  Only member<->member
traffic is dropped: the control node (clients, the nemesis itself) keeps
reaching every node, as in Jepsen.  Each node gets its whole rule set in one
``iptables-restore --noflush`` call, and nodes are handled concurrently, so
partitioning or healing 5 namespaces takes a few tens of milliseconds
(``bench/cluster_ops.py``: partition ≈ 30 ms, heal ≈ 70 ms on a loaded 2-core
machine).

:func:`verify_connectivity` checks with real TCP connects from inside the
nodes that a grudge (or, after a heal, full connectivity) is in force: a
connect that is answered (accepted or refused with a RST) means open, one
that times out means dropped.  It needs only ``bash`` and ``timeout`` on
the node, no listener.

:func:`packet_loss` drops a chosen fraction of the packets on chosen links
at random (iptables' ``statistic`` match) in a second chain
(``JEPSY-LOSS``), independent of partitions.

IPv4 addresses only (``remote.address(node)``; a hostname is resolved on the
control node).

By example::

    >>> import random
    >>> g = complete_grudge([["n1", "n2"], ["n3"]])
    >>> sorted(g["n3"])
    ['n1', 'n2']
    >>> sorted(bridge(["n1", "n2", "n3", "n4", "n5"])["n3"])
    []

and, against a cluster::

    grudge = majorities_ring(remote.nodes(), random.Random(1))
    partition(remote, grudge)
    verify_connectivity(remote, grudge)   # TCP connects: blocked across, open within
    heal(remote)
    verify_connectivity(remote)        # raises ConnectivityError if a link is still cut
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias, TypeVar

from jepsy.control import Remote
from jepsy.errors import ConfigError, JepsyError

log = logging.getLogger(__name__)

Grudge: TypeAlias = Mapping[str, frozenset[str]]
"""node -> the nodes whose packets it drops."""

CHAIN = "JEPSY"
"""The iptables chain holding partition rules (jumped to from INPUT)."""

LOSS_CHAIN = "JEPSY-LOSS"
"""The iptables chain holding packet-loss rules (jumped to from INPUT)."""

PROBE_PORT = 9
"""The TCP port :func:`probe` connects to by default (discard: a refusal is an answer)."""

PARTITION_STRATEGIES: tuple[str, ...] = (
    "one",
    "halves",
    "random-halves",
    "majority",
    "minority-third",
    "majorities-ring",
    "bridge",
    "primaries",
)
"""Names accepted by :func:`grudge_for`."""

T = TypeVar("T")


class ConnectivityError(JepsyError):
    """Probed connectivity differs from what was expected.

    ``mismatches`` maps ``(src, dst)`` to ``(expected, observed)`` where each
    is ``"open"``, ``"blocked"`` or ``"error: ..."``."""

    def __init__(self, message: str, *, mismatches: Mapping[tuple[str, str], tuple[str, str]]):
        self.mismatches = dict(mismatches)
        lines = [message]
        for (src, dst), (want, got) in sorted(self.mismatches.items()):
            lines.append(f"{src} -> {dst}: expected {want}, observed {got}")
        super().__init__("\n  ".join(lines))


# ---------------------------------------------------------------------------
# Grudges: pure functions
# ---------------------------------------------------------------------------


def complete_grudge(components: Iterable[Iterable[str]]) -> dict[str, frozenset[str]]:
    """Cut every component off from every other: each node drops every node
    outside its own component.  Symmetric."""
    comps = [frozenset(c) for c in components]
    everyone = frozenset().union(*comps) if comps else frozenset()
    seen: set[str] = set()
    for c in comps:
        if seen & c:
            raise ConfigError(
                f"partition components must be disjoint; {sorted(seen & c)} appear twice "
                f"in {[sorted(c) for c in comps]}"
            )
        seen |= c
    return {n: everyone - c for c in comps for n in c}


def bisect(nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split into (smaller half, larger half), keeping order."""
    k = len(nodes) // 2
    return list(nodes[:k]), list(nodes[k:])


def _check_nodes(nodes: Sequence[str], at_least: int, what: str) -> list[str]:
    ns = list(nodes)
    if len(set(ns)) != len(ns):
        raise ConfigError(f"{what}: node names must be distinct; got {ns}")
    if len(ns) < at_least:
        raise ConfigError(f"{what} needs at least {at_least} nodes; got {len(ns)}: {ns}")
    return ns


def one(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Isolate one random node from all the others."""
    ns = _check_nodes(nodes, 2, "one")
    loner = rng.choice(ns)
    return complete_grudge([[loner], [n for n in ns if n != loner]])


def halves(nodes: Sequence[str]) -> dict[str, frozenset[str]]:
    """Cut the node list in two, in order: the first ``n // 2`` against the rest."""
    ns = _check_nodes(nodes, 2, "halves")
    return complete_grudge(bisect(ns))


def random_halves(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Cut a random minority (``n // 2`` nodes) off from the majority."""
    ns = _check_nodes(nodes, 2, "random-halves")
    shuffled = list(ns)
    rng.shuffle(shuffled)
    return complete_grudge(bisect(shuffled))


def majority(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """A random majority against the minority (Jepsen's ``:majority``; the
    same split as :func:`random_halves`)."""
    return random_halves(nodes, rng)


def minority_third_size(n: int) -> int:
    """The largest group strictly smaller than a third of ``n`` nodes."""
    return (n - 1) // 3


def minority_third(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Isolate a random group of fewer than a third of the nodes (at least 4 nodes)."""
    ns = _check_nodes(nodes, 4, "minority-third")
    shuffled = list(ns)
    rng.shuffle(shuffled)
    k = minority_third_size(len(ns))
    return complete_grudge([shuffled[:k], shuffled[k:]])


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Every node sees a majority, and (for 4+ nodes) no two see the same one.

    The nodes are shuffled onto a ring; each node keeps the ``d`` neighbours
    on either side, with ``d`` the smallest reach that makes ``2d + 1`` a
    majority, and drops the rest.  Symmetric.  (With 3 nodes everyone sees
    everyone: there is no such partition.)"""
    ns = _check_nodes(nodes, 3, "majorities-ring")
    ring = list(ns)
    rng.shuffle(ring)
    n = len(ring)
    need = n // 2 + 1
    d = need // 2  # the smallest d with 2d + 1 >= need
    grudge: dict[str, frozenset[str]] = {}
    for i, node in enumerate(ring):
        sees = {ring[(i + k) % n] for k in range(-d, d + 1)}
        grudge[node] = frozenset(ns) - sees
    return grudge


def bridge(nodes: Sequence[str], rng: random.Random | None = None) -> dict[str, frozenset[str]]:
    """Two halves that cannot see each other, and one bridge node that sees both.

    With ``rng`` the nodes are shuffled first; otherwise the bridge is the
    first node of the larger (second) half of the list."""
    ns = _check_nodes(nodes, 3, "bridge")
    if rng is not None:
        ns = list(ns)
        rng.shuffle(ns)
    left, right = bisect(ns)
    b = right[0]
    right = right[1:]
    g: dict[str, frozenset[str]] = {n: frozenset(right) for n in left}
    g.update({n: frozenset(left) for n in right})
    g[b] = frozenset()
    return g


def primaries(nodes: Sequence[str], primary_nodes: Iterable[str]) -> dict[str, frozenset[str]]:
    """Isolate every primary on its own; the other nodes stay together."""
    ns = list(nodes)
    prims = [p for p in dict.fromkeys(primary_nodes) if p in ns]
    if not prims:
        raise ConfigError(
            f"primaries: the DB reported no primary among the nodes {ns}",
        )
    rest = [n for n in ns if n not in prims]
    comps = [[p] for p in prims]
    if rest:
        comps.append(rest)
    return complete_grudge(comps)


def grudge_for(
    strategy: str,
    nodes: Sequence[str],
    rng: random.Random,
    *,
    primary_nodes: Iterable[str] | None = None,
) -> dict[str, frozenset[str]]:
    """The grudge a named strategy (one of :data:`PARTITION_STRATEGIES`) gives."""
    if strategy == "one":
        return one(nodes, rng)
    if strategy == "halves":
        return halves(nodes)
    if strategy == "random-halves":
        return random_halves(nodes, rng)
    if strategy == "majority":
        return majority(nodes, rng)
    if strategy == "minority-third":
        return minority_third(nodes, rng)
    if strategy == "majorities-ring":
        return majorities_ring(nodes, rng)
    if strategy == "bridge":
        return bridge(nodes, rng)
    if strategy == "primaries":
        if primary_nodes is None:
            raise ConfigError(
                "partition strategy 'primaries' needs the DB's primaries; "
                "hint: the DB must implement jepsy.db.HasPrimaries"
            )
        return primaries(nodes, primary_nodes)
    raise ConfigError(
        f"unknown partition strategy {strategy!r}; choose one of {', '.join(PARTITION_STRATEGIES)}"
    )


def blocked(grudge: Grudge, a: str, b: str) -> bool:
    """True when a TCP connection between ``a`` and ``b`` cannot work: either
    side drops the other's packets."""
    return b in grudge.get(a, frozenset()) or a in grudge.get(b, frozenset())


def is_symmetric(grudge: Grudge) -> bool:
    """True when every ``a`` dropping ``b`` is matched by ``b`` dropping ``a``."""
    return all(a in grudge.get(b, frozenset()) for a, bs in grudge.items() for b in bs)


def components_seen(grudge: Grudge, nodes: Iterable[str]) -> dict[str, frozenset[str]]:
    """node -> the nodes it can still talk to (itself included)."""
    ns = frozenset(nodes)
    return {n: ns - grudge.get(n, frozenset()) for n in ns}


def to_json(grudge: Grudge) -> dict[str, list[str]]:
    """A JSON-ready, sorted form of a grudge (for history values)."""
    return {n: sorted(grudge[n]) for n in sorted(grudge)}


def from_json(value: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Read a grudge back from its JSON form (``{node: [nodes]}``)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"a grudge must be a mapping node -> [nodes]; got {value!r}")
    out: dict[str, frozenset[str]] = {}
    for k, v in value.items():
        if isinstance(v, str) or not isinstance(v, Iterable):
            raise ConfigError(f"grudge entry for {k!r} must be a list of nodes; got {v!r}")
        out[str(k)] = frozenset(str(x) for x in v)
    return out


# ---------------------------------------------------------------------------
# Running things on nodes concurrently
# ---------------------------------------------------------------------------


def try_on_nodes(
    nodes: Iterable[str], fn: Callable[[str], T]
) -> tuple[dict[str, T], dict[str, Exception]]:
    """Run ``fn(node)`` for every node concurrently; return (results, errors)."""
    ns = list(dict.fromkeys(nodes))
    results: dict[str, T] = {}
    errors: dict[str, Exception] = {}
    if not ns:
        return results, errors
    with ThreadPoolExecutor(max_workers=len(ns), thread_name_prefix="jepsy-net") as pool:
        futures = {n: pool.submit(fn, n) for n in ns}
        for n, fut in futures.items():
            try:
                results[n] = fut.result()
            except Exception as e:
                errors[n] = e
    return results, errors


def on_nodes(nodes: Iterable[str], fn: Callable[[str], T]) -> dict[str, T]:
    """Run ``fn(node)`` for every node concurrently; all finish before the
    first error (in node order) is re-raised."""
    results, errors = try_on_nodes(nodes, fn)
    if errors:
        first = next(iter(errors.values()))
        for n, e in errors.items():
            if e is not first:
                first.add_note(f"also failed on {n}: {e}")
        raise first
    return results


# ---------------------------------------------------------------------------
# Applying rules
# ---------------------------------------------------------------------------

_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def ipv4_of(remote: Remote, node: str) -> str:
    """``remote.address(node)`` as an IPv4 address (hostnames resolved here)."""
    addr = remote.address(node)
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        if not _HOSTNAME.match(addr):
            raise ConfigError(
                f"node {node!r} has address {addr!r}, which is neither an IP address "
                "nor a host name"
            ) from None
        try:
            infos = socket.getaddrinfo(addr, None, socket.AF_INET)
        except OSError as e:
            raise ConfigError(
                f"cannot resolve the address {addr!r} of node {node!r}: {e}; "
                "hint: give the remote IPv4 addresses"
            ) from None
        return str(infos[0][4][0])
    if ip.version != 4:
        raise ConfigError(
            f"node {node!r} has the IPv6 address {addr!r}; jepsy.net handles IPv4 only"
        )
    return str(ip)


# One shell per node; the rules come on stdin.  $1 = chain.
_APPLY = (
    "iptables-restore -w --noflush || exit 1; "
    'iptables -w -C INPUT -j "$1" 2>/dev/null || iptables -w -I INPUT 1 -j "$1"'
)
# One shell per node, $1 = chain: read the rules once, remove jepsy's jump(s)
# and chain in one iptables-restore, then check that nothing of it is left.
_REMOVE = r"""
c=$1
rules=$(iptables -w -S) || exit 2
jumps=$(printf '%s\n' "$rules" | grep -x -- "-A INPUT -j $c")
if ! printf '%s\n' "$rules" | grep -qx -- "-N $c" && [ -z "$jumps" ]; then exit 0; fi
{
  printf '*filter\n'
  [ -n "$jumps" ] && printf '%s\n' "$jumps" | sed 's/^-A /-D /'
  if printf '%s\n' "$rules" | grep -qx -- "-N $c"; then printf -- '-F %s\n-X %s\n' "$c" "$c"; fi
  printf 'COMMIT\n'
} | iptables-restore -w --noflush || exit 3
if iptables -w -S | grep -qx -e "-N $c" -e "-A INPUT -j $c"; then
  echo "leftover $c rules" >&2; exit 3
fi
exit 0
"""


def _restore_input(chain: str, lines: Iterable[str]) -> bytes:
    body = "".join(f"{line}\n" for line in lines)
    return f"*filter\n:{chain} - [0:0]\n{body}COMMIT\n".encode()


def _apply_chain(
    remote: Remote, rules: Mapping[str, list[str]], chain: str, timeout: float
) -> None:
    def apply(node: str) -> None:
        remote.exec(
            node,
            ["sh", "-c", _APPLY, "jepsy-net", chain],
            stdin=_restore_input(chain, rules[node]),
            timeout=timeout,
        )

    on_nodes(rules, apply)


def partition(
    remote: Remote,
    grudge: Grudge,
    *,
    nodes: Sequence[str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Make every node drop packets from the nodes it holds a grudge against.

    Replaces any earlier partition (the ``JEPSY`` chain is rewritten as a
    whole on every node in ``nodes``, default ``remote.nodes()``), so a node
    absent from ``grudge`` ends up with no grudge.  One exec per node, all
    nodes at once."""
    ns = list(nodes if nodes is not None else remote.nodes())
    unknown = sorted(({*grudge} | {m for v in grudge.values() for m in v}) - set(ns))
    if unknown:
        raise ConfigError(f"grudge names nodes {unknown} that are not among the nodes {ns}")
    addrs = {n: ipv4_of(remote, n) for n in ns}
    rules = {
        n: [f"-A {CHAIN} -s {addrs[m]}/32 -j DROP" for m in sorted(grudge.get(n, ()))] for n in ns
    }
    t0 = time.monotonic()
    _apply_chain(remote, rules, CHAIN, timeout)
    log.info("partitioned %s in %.3fs", to_json(grudge), time.monotonic() - t0)


def heal(remote: Remote, *, nodes: Sequence[str] | None = None, timeout: float = 10.0) -> None:
    """Remove jepsy's partition rules on every node (and nothing else); idempotent.

    Raises the remote's error if a node still holds jepsy rules afterwards."""
    _remove_chain(remote, CHAIN, nodes, timeout)


def _remove_chain(remote: Remote, chain: str, nodes: Sequence[str] | None, timeout: float) -> None:
    ns = list(nodes if nodes is not None else remote.nodes())
    t0 = time.monotonic()
    on_nodes(
        ns,
        lambda n: remote.exec(n, ["sh", "-c", _REMOVE, "jepsy-net", chain], timeout=timeout),
    )
    log.info("removed %s rules on %s in %.3fs", chain, ns, time.monotonic() - t0)


def packet_loss(
    remote: Remote,
    links: Grudge,
    probability: float,
    *,
    nodes: Sequence[str] | None = None,
    timeout: float = 10.0,
    exempt_port: int | None = PROBE_PORT,
) -> None:
    """Drop a random ``probability`` of the packets each node receives from the
    nodes ``links`` names (``node -> senders``), independently per packet.

    Replaces earlier packet-loss rules; partitions are untouched.  For loss on
    both directions of a link, name it both ways (a symmetric map).
    TCP to and from ``exempt_port`` (jepsy's probes, see :func:`probe`) is
    never dropped, so a partition nemesis can still verify its partitions
    and heals while loss is on; None drops it too."""
    if not 0.0 < probability <= 1.0:
        raise ConfigError(f"packet-loss probability must be in (0, 1]; got {probability!r}")
    ns = list(nodes if nodes is not None else remote.nodes())
    unknown = sorted(({*links} | {m for v in links.values() for m in v}) - set(ns))
    if unknown:
        raise ConfigError(f"packet-loss links name nodes {unknown} not among the nodes {ns}")
    addrs = {n: ipv4_of(remote, n) for n in ns}
    p = f"{probability:.6f}"
    exempt = (
        []
        if exempt_port is None
        else [
            f"-A {LOSS_CHAIN} -p tcp --dport {exempt_port} -j RETURN",
            f"-A {LOSS_CHAIN} -p tcp --sport {exempt_port} -j RETURN",
        ]
    )
    rules = {
        n: [
            f"-A {LOSS_CHAIN} -s {addrs[m]}/32 -m statistic --mode random --probability {p} -j DROP"
            for m in sorted(links.get(n, ()))
        ]
        for n in ns
    }
    rules = {n: exempt + r if r else r for n, r in rules.items()}
    _apply_chain(remote, rules, LOSS_CHAIN, timeout)


def heal_packet_loss(
    remote: Remote, *, nodes: Sequence[str] | None = None, timeout: float = 10.0
) -> None:
    """Remove jepsy's packet-loss rules on every node; idempotent."""
    _remove_chain(remote, LOSS_CHAIN, nodes, timeout)


def rules(remote: Remote, node: str, *, timeout: float = 10.0) -> list[str]:
    """jepsy's iptables rules currently on ``node`` (``iptables -S`` lines
    mentioning a JEPSY chain), for checks and debugging."""
    res = remote.exec(node, ["iptables", "-w", "-S"], timeout=timeout)
    return [line for line in res.out.splitlines() if CHAIN in line]


# ---------------------------------------------------------------------------
# Probing with real TCP connects
# ---------------------------------------------------------------------------

# $1 = timeout (s), $2 = port, $3.. = addresses.  One line per address.
_PROBE = r"""
t=$1; p=$2; shift 2
for a in "$@"; do
  (
    out=$(timeout "$t" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$a" "$p" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then echo "$a open"
    elif [ $rc -eq 124 ]; then echo "$a blocked"
    else
      case $out in
        *refused*) echo "$a open" ;;
        *) echo "$a error $(printf %s "$out" | tr '\n' ' ' | cut -c1-200)" ;;
      esac
    fi
  ) &
done
wait
"""


def probe(
    remote: Remote,
    pairs: Iterable[tuple[str, str]],
    *,
    port: int = PROBE_PORT,
    connect_timeout: float = 0.5,
    timeout: float = 20.0,
) -> dict[tuple[str, str], str]:
    """Try one TCP connect for each ``(src, dst)``, from inside ``src``.

    Returns ``(src, dst) -> "open" | "blocked" | "error: ..."``: ``open`` when
    ``dst`` answered (accepted, or refused with a RST: nothing needs to
    listen on ``port``), ``blocked`` when nothing came back within
    ``connect_timeout`` seconds.  All of a node's probes run in parallel, and
    all nodes at once."""
    by_src: dict[str, list[str]] = {}
    for src, dst in pairs:
        by_src.setdefault(src, []).append(dst)
    addr_cache: dict[str, str] = {}

    def addr(n: str) -> str:
        if n not in addr_cache:
            addr_cache[n] = ipv4_of(remote, n)
        return addr_cache[n]

    for src, dsts in by_src.items():
        addr(src)
        for d in dsts:
            addr(d)

    def run(src: str) -> dict[tuple[str, str], str]:
        dsts = by_src[src]
        res = remote.exec(
            src,
            ["bash", "-c", _PROBE, "jepsy-probe", f"{connect_timeout:g}", str(port)]
            + [addr_cache[d] for d in dsts],
            timeout=timeout + connect_timeout,
        )
        seen: dict[str, str] = {}
        for line in res.out.splitlines():
            a, _, rest = line.partition(" ")
            if rest.startswith("error "):
                rest = "error: " + rest[len("error ") :]
            seen[a] = rest
        return {(src, d): seen.get(addr_cache[d], "error: no answer from probe") for d in dsts}

    results = on_nodes(list(by_src), run)
    out: dict[tuple[str, str], str] = {}
    for r in results.values():
        out.update(r)
    return out


def verify_connectivity(
    remote: Remote,
    grudge: Grudge | None = None,
    *,
    nodes: Sequence[str] | None = None,
    port: int = PROBE_PORT,
    connect_timeout: float = 0.5,
) -> dict[tuple[str, str], str]:
    """Probe every ordered pair of distinct nodes and compare with ``grudge``
    (None: everything must be open, e.g. after :func:`heal`).

    Returns the probe results; raises :class:`ConnectivityError` listing
    every pair whose state differs from the expected one."""
    ns = list(nodes if nodes is not None else remote.nodes())
    g: Grudge = grudge or {}
    pairs = [(a, b) for a in ns for b in ns if a != b]
    got = probe(remote, pairs, port=port, connect_timeout=connect_timeout)
    # On a loaded machine a slow answer looks like a drop, and a probe may be
    # lost: probe every pair that does not match once more, more patiently.
    again = [(a, b) for a, b in pairs if got[(a, b)] != ("blocked" if blocked(g, a, b) else "open")]
    if again:
        got.update(probe(remote, again, port=port, connect_timeout=min(4 * connect_timeout, 3.0)))
    mismatches: dict[tuple[str, str], tuple[str, str]] = {}
    for a, b in pairs:
        want = "blocked" if blocked(g, a, b) else "open"
        if got[(a, b)] != want:
            mismatches[(a, b)] = (want, got[(a, b)])
    if mismatches:
        what = "the partition" if grudge else "full connectivity (after heal)"
        raise ConnectivityError(
            f"probed TCP connectivity does not match {what}", mismatches=mismatches
        )
    return got


__all__ = [
    "CHAIN",
    "LOSS_CHAIN",
    "PARTITION_STRATEGIES",
    "PROBE_PORT",
    "ConnectivityError",
    "Grudge",
    "bisect",
    "blocked",
    "bridge",
    "complete_grudge",
    "components_seen",
    "from_json",
    "grudge_for",
    "halves",
    "heal",
    "heal_packet_loss",
    "ipv4_of",
    "is_symmetric",
    "majorities_ring",
    "majority",
    "minority_third",
    "minority_third_size",
    "on_nodes",
    "one",
    "packet_loss",
    "partition",
    "primaries",
    "probe",
    "random_halves",
    "rules",
    "to_json",
    "try_on_nodes",
    "verify_connectivity",
]
