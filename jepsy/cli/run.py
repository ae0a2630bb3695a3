"""``jepsy test``, ``jepsy analyze`` and ``jepsy list``.

Option names follow Jepsen's CLI.  Try it without root::

    jepsy test --db memory --workload register --time-limit 10
    jepsy test --db memory --workload register --time-limit 10 --memory-bug stale-reads
    jepsy analyze latest

Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 crash,
130 cleanup aborted by a second Ctrl-C.  With ``--test-count N`` the worst
of the N runs (crash > bad arguments > invalid > unknown > valid).
"""

from __future__ import annotations

import inspect
import logging
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from jepsy.errors import ConfigError

log = logging.getLogger(__name__)

_SEVERITY = {0: 0, 2: 1, 1: 2, 254: 3, 255: 4}


def worst_exit(codes: Sequence[int]) -> int:
    """The worst of several runs' exit codes (crash > bad args > invalid > unknown > valid)."""
    if not codes:
        return 0
    return max(codes, key=lambda c: _SEVERITY.get(c, 5))


def _split(values: Sequence[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or ():
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"option {p!r} must look like key=value (e.g. -o ops_per_key=50)")
        k, v = p.split("=", 1)
        k = k.strip().replace("-", "_")
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _nodes(nodes: str | None, nodes_file: str | None) -> list[str] | None:
    if nodes and nodes_file:
        raise ConfigError("give either --nodes or --nodes-file, not both")
    if nodes_file:
        try:
            text = Path(nodes_file).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read --nodes-file {nodes_file!r}: {e.strerror}") from None
        got = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not got:
            raise ConfigError(f"--nodes-file {nodes_file!r} lists no nodes")
        return got
    if nodes:
        return _split([nodes])
    return None


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (rich's live display redirects it)."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)

    def flush(self) -> None:
        sys.stderr.flush()


def _setup_logging(verbose: int) -> logging.Handler:
    h: logging.Handler = logging.StreamHandler(_CurrentStderr())
    h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    h.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.getLogger().addHandler(h)
    return h


@click.command("test")
@click.option(
    "--workload",
    "-w",
    default="register",
    show_default=True,
    help="Workload name or a path to a .py file exposing `workload`.",
)
@click.option(
    "--db", default="memory", show_default=True, help="Database suite (see `jepsy list`)."
)
@click.option("--nodes", default=None, help="Comma-separated node names [default: n1..n5].")
@click.option("--nodes-file", default=None, help="File with one node name per line.")
@click.option(
    "--remote",
    type=click.Choice(["local", "docker", "ssh"]),
    default=None,
    help="How to reach nodes [default: local; none for --db memory].",
)
@click.option("--username", default=None, help="--remote ssh: user to log in as [default: root].")
@click.option(
    "--password", default=None, help="--remote ssh: password (never written to test.json)."
)
@click.option("--ssh-private-key", default=None, help="--remote ssh: private key file.")
@click.option("--ssh-port", type=int, default=None, help="--remote ssh: port [default: 22].")
@click.option("--sudo", is_flag=True, help="--remote ssh: run commands through sudo.")
@click.option("--docker-host", default=None, help="--remote docker: the Docker daemon URL.")
@click.option("--cluster", default=None, help="--remote local/docker: cluster name.")
@click.option(
    "--concurrency",
    default="1n",
    show_default=True,
    help="Client workers: a number, or Nn for N per node.",
)
@click.option(
    "--time-limit", type=float, default=60.0, show_default=True, help="Seconds of the main phase."
)
@click.option(
    "--rate",
    type=float,
    default=1000.0,
    show_default=True,
    help="Target client ops per second over all workers; 0 = as fast as possible.",
)
@click.option(
    "--op-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds before a hung op is recorded as info.",
)
@click.option(
    "--test-count",
    type=int,
    default=1,
    show_default=True,
    help="Run the test this many times; exit with the worst result.",
)
@click.option(
    "--nemesis",
    multiple=True,
    help="Faults, comma-separated: partition, kill, pause, clock, packet-loss, none.",
)
@click.option(
    "--nemesis-interval",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between nemesis actions.",
)
@click.option(
    "--nemesis-targets", default=None, help="Comma-separated target strategies (e.g. one,majority)."
)
@click.option("--leave-db-running", is_flag=True, help="Do not tear the DB down at the end.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for the generators (test i uses seed + i).",
)
@click.option("--store", default="store", show_default=True, help="Store directory.")
@click.option("--name", default=None, help="Test name [default: <db>-<workload>].")
@click.option(
    "--memory-bug",
    multiple=True,
    help="--db memory: plant a bug (stale-reads, lost-writes, non-atomic-cas).",
)
@click.option(
    "--serializable-reads",
    is_flag=True,
    help="--db etcd: serve reads locally (stale reads possible); same as -o serializable_reads=true.",
)
@click.option(
    "-o", "--option", "options", multiple=True, help="Suite/workload option key=value (repeatable)."
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr.")
def test_cmd(
    workload: str,
    db: str,
    nodes: str | None,
    nodes_file: str | None,
    remote: str | None,
    username: str | None,
    password: str | None,
    ssh_private_key: str | None,
    ssh_port: int | None,
    sudo: bool,
    docker_host: str | None,
    cluster: str | None,
    concurrency: str,
    time_limit: float,
    rate: float | None,
    op_timeout: float,
    test_count: int,
    nemesis: tuple[str, ...],
    nemesis_interval: float,
    nemesis_targets: str | None,
    leave_db_running: bool,
    seed: int,
    store: str,
    name: str | None,
    memory_bug: tuple[str, ...],
    serializable_reads: bool,
    options: tuple[str, ...],
    verbose: int,
) -> int:
    """Run a test: set up DB, run clients and nemesis, check the history."""
    from jepsy.cli.display import make_display
    from jepsy.runner import build_test, run

    if test_count < 1:
        raise ConfigError(f"--test-count must be at least 1; got {test_count}")
    if workload.endswith(".py") or "/" in workload:
        if not Path(workload).is_file():
            raise ConfigError(f"--workload {workload!r}: no such file")
        workload = str(Path(workload).resolve())
    spec: dict[str, Any] = {
        **_parse_options(options),
        "workload": workload,
        "db": db,
        "remote": remote,
        "concurrency": concurrency,
        "time_limit": time_limit,
        "rate": rate or None,
        "op_timeout": op_timeout,
        "nemesis": _split(nemesis),
        "nemesis_interval": nemesis_interval,
        "nemesis_targets": _split([nemesis_targets]) if nemesis_targets else None,
        "leave_db_running": leave_db_running,
        "store": store,
        "name": name,
    }
    ropts: dict[str, Any] = {}
    if remote == "ssh":
        for k, v in (
            ("user", username),
            ("key_file", ssh_private_key),
            ("port", ssh_port),
            ("sudo", sudo or None),
        ):
            if v is not None:
                ropts[k] = v
    elif username or password or ssh_private_key or ssh_port or sudo:
        raise ConfigError(
            "--username/--password/--ssh-private-key/--ssh-port/--sudo need --remote ssh"
        )
    if docker_host:
        if remote != "docker":
            raise ConfigError("--docker-host needs --remote docker")
        ropts["docker_host"] = docker_host
    if cluster:
        if remote not in ("local", "docker", None):
            raise ConfigError("--cluster applies to --remote local or docker")
        ropts["cluster"] = cluster
    spec["remote_opts"] = ropts
    secrets = {"password": password} if password else None
    ns = _nodes(nodes, nodes_file)
    if ns is not None:
        spec["nodes"] = ns
    if memory_bug:
        spec["memory_bug"] = _split(memory_bug)
    if serializable_reads:
        if db != "etcd":
            raise ConfigError(f"--serializable-reads applies to --db etcd, not --db {db}")
        spec["serializable_reads"] = True
    handler = _setup_logging(verbose)
    codes: list[int] = []
    try:
        for i in range(test_count):
            test = build_test({**spec, "seed": seed + i}, secrets=secrets)
            if test_count > 1:
                click.echo(f"== test {i + 1}/{test_count} (seed {seed + i})", err=True)
            with make_display() as show:
                result = run(test, progress=show.update)
            codes.append(result.exit_code)
            _summary(result)
            if result.aborted:
                break
    finally:
        logging.getLogger().removeHandler(handler)
    return 130 if codes and codes[-1] == 130 else worst_exit(codes)


def _summary(result: Any) -> None:
    valid = result.valid
    colour = {True: "green", False: "red"}.get(valid, "yellow")
    verdict = _verdict(valid)
    click.echo(f"{result.ops} history entries recorded in {result.run_dir.path}", err=True)
    if result.error:
        click.secho(f"the run crashed: {result.error}", fg="red", err=True)
    if result.aborted:
        click.secho("cleanup aborted; left behind:", fg="red", err=True)
        for item in result.left_behind:
            click.secho(f"  - {item}", fg="red", err=True)
    if result.results is not None:
        for cname, child in result.results.children.items():
            v = _verdict(child.valid)
            extra = f" ({child.error})" if child.error else ""
            click.echo(f"  {cname}: {v}{extra}", err=True)
    report = result.run_dir.path / "report.html"
    if report.exists():
        click.echo(f"report: {report}", err=True)
    click.secho(f"verdict: {verdict}", fg=colour, bold=True)


@click.command("analyze")
@click.argument("run_dir", default="latest")
@click.option("--store", default="store", show_default=True, help="Store directory.")
def analyze(run_dir: str, store: str) -> int:
    """Re-check a stored run (RUN_DIR, 'latest' or a test name) with the current checkers.

    Rebuilds the checker from test.json's spec, checks history.jsonl, and
    writes results.json again (the previous one is kept as results.<time>.json)."""
    from jepsy.cli import exit_code_for
    from jepsy.core import Test
    from jepsy.runner import check_run, checker_from_spec
    from jepsy.store import find_run

    rd = find_run(run_dir, store_dir=store)
    data = rd.test() if rd.test_file.exists() else {}
    spec = data.get("spec") or {}
    if not spec.get("workload"):
        raise ConfigError(
            f"{rd.test_file} has no spec.workload; cannot rebuild its checker "
            "(use `jepsy check` on the history instead)"
        )
    nodes = tuple(data.get("nodes") or ("n1",))
    test = Test(
        name=str(data.get("name", "analyze")),
        nodes=nodes,
        concurrency=int(data.get("concurrency") or 1),
        time_limit=data.get("time_limit"),
        seed=int(data.get("seed") or 0),
        checker=checker_from_spec(spec),
        spec=spec,
        plot=data.get("plot") or {},
    )
    res = check_run(test, rd)
    for cname, child in res.children.items():
        v = _verdict(child.valid)
        click.echo(f"  {cname}: {v}" + (f" ({child.error})" if child.error else ""), err=True)
    click.echo(f"results written to {rd.results_file}", err=True)
    verdict = _verdict(res.valid)
    click.echo(f"verdict: {verdict}")
    return exit_code_for(res.valid)


_NEMESES = {
    "none": "no faults",
    "partition": "network partitions (grudges: halves, majority, one, ...), healed at the end",
    "kill": "SIGKILL the DB on target nodes, restart it later (needs a Killable DB)",
    "pause": "SIGSTOP/SIGCONT the DB on target nodes (needs a Pausable DB)",
    "clock": "bump and skew node clocks, reset at the end",
    "packet-loss": "drop a fraction of packets between nodes",
}


def _verdict(valid: Any) -> str:
    if valid is True:
        return "valid"
    if valid is False:
        return "INVALID"
    return "unknown"


def _signature(fn: Any) -> str:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(...)"
    return str(sig.replace(return_annotation=inspect.Signature.empty))


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


@click.command("list")
def list_cmd() -> int:
    """List workloads, dbs, nemeses and checkers with their options."""
    import importlib

    from jepsy.dbs import suites
    from jepsy.workloads.core import workloads

    click.secho("Workloads (--workload)", bold=True)
    for w in workloads().values():
        click.echo(f"  {w.name}: {w.doc}")
        for f, shape in w.ops.items():
            click.echo(f"      op {f}: {shape}")
        for k, d in w.options.items():
            click.echo(f"      -o {k}=...: {d}")
    click.secho("DBs (--db)", bold=True)
    for s in suites().values():
        click.echo(f"  {s.name}: {s.doc}")
        click.echo(f"      workloads: {', '.join(sorted(s.workloads))}")
        for k, d in s.options.items():
            flag = f"--{k.replace('_', '-')}" if k == "memory_bug" else f"-o {k}=..."
            click.echo(f"      {flag}: {d}")
    click.secho("Nemeses (--nemesis a,b)", bold=True)
    names = dict(_NEMESES)
    try:
        comb = importlib.import_module("jepsy.nemeses.combined")
        docs = getattr(comb, "NEMESES", None)
        if isinstance(docs, dict):
            names.update({str(k): str(v) for k, v in docs.items()})
    except ImportError:
        pass
    for k, d in names.items():
        click.echo(f"  {k}: {d}")
    click.secho("Checkers (Python: jepsy.checkers.<module>)", bold=True)
    import jepsy.checkers as chk

    for mod in sorted(m.name for m in pkgutil.iter_modules(chk.__path__)):
        if mod.startswith("_"):
            continue
        try:
            m = importlib.import_module(f"jepsy.checkers.{mod}")
        except Exception as e:
            click.echo(f"  {mod}: (cannot import: {e})")
            continue
        click.echo(f"  {mod}: {_first_line(m.__doc__)}")
        for fname, fn in vars(m).items():
            if fname.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != m.__name__:
                continue
            ret = getattr(m, str(inspect.signature(fn).return_annotation).strip("'\""), None)
            if inspect.isclass(ret) and hasattr(ret, "check"):  # a checker factory
                click.echo(f"      {fname}{_signature(fn)}")
    return 0


__all__ = ["analyze", "list_cmd", "test_cmd", "worst_exit"]
