"""``jepsy cluster up|down|status`` and ``jepsy docker build-image``.

A cluster made with ``jepsy cluster up`` outlives one test: a later ``jepsy
test --remote local`` (or ``docker``) with the same cluster name and nodes
adopts it instead of making its own.  ``jepsy cluster down`` removes it, and
also whatever a killed run left behind (namespaces, bridge, FORWARD rule,
processes in the namespaces; containers and networks with the cluster's
label).
"""

from __future__ import annotations

import logging
from typing import Any

import click

from jepsy.control import make_remote
from jepsy.errors import ConfigError, RemoteError

log = logging.getLogger(__name__)


def parse_nodes(spec: str) -> tuple[str, ...]:
    """``"5"`` -> n1..n5; ``"a,b,c"`` -> those names."""
    spec = spec.strip()
    if spec.isdigit():
        n = int(spec)
        if not 1 <= n <= 99:
            raise ConfigError(f"--nodes {spec}: give 1 to 99 nodes, or a comma-separated list")
        return tuple(f"n{i}" for i in range(1, n + 1))
    names = tuple(x.strip() for x in spec.split(",") if x.strip())
    if not names:
        raise ConfigError(f"--nodes {spec!r}: give a count (5) or names (n1,n2,n3)")
    return names


def _up_opts(kind: str, cluster: str, subnet: str | None, image: str | None) -> dict[str, Any]:
    opts: dict[str, Any] = {"cluster": cluster, "persistent": True}
    if subnet:
        opts["subnet"] = subnet
    if image and kind == "docker":
        opts["image"] = image
    return opts


_remote_option = click.option(
    "--remote",
    "kind",
    type=click.Choice(["local", "docker"]),
    default="local",
    show_default=True,
    help="local: network namespaces (root); docker: containers.",
)
_cluster_option = click.option(
    "--cluster",
    default="jepsy",
    show_default=True,
    help="Cluster name (namespaces <cluster>-<node>, containers labelled jepsy.cluster=<cluster>).",
)


@click.group("cluster")
def cluster() -> None:
    """Bring a cluster of nodes up or down, or show it."""


@cluster.command("up")
@click.option("--nodes", default="5", show_default=True, help="A count, or names: n1,n2,n3.")
@_remote_option
@_cluster_option
@click.option("--subnet", default=None, help="IPv4 subnet for the nodes (default per remote).")
@click.option("--image", default=None, help="Docker node image (docker only).")
def up(nodes: str, kind: str, cluster: str, subnet: str | None, image: str | None) -> None:
    """Create the nodes and leave them running."""
    names = parse_nodes(nodes)
    remote = make_remote(kind, names, **_up_opts(kind, cluster, subnet, image))
    remote.setup()
    _print_nodes(remote, names)


@cluster.command("down")
@_remote_option
@_cluster_option
def down(kind: str, cluster: str) -> None:
    """Remove the cluster and any leftovers of a killed run."""
    if kind == "local":
        from jepsy.control.local import destroy

        removed = destroy(cluster)
    else:
        from jepsy.control.docker import destroy as docker_destroy

        removed = docker_destroy(cluster)
    what = ", ".join(f"{len(v)} {k}" for k, v in removed.items() if v) or "nothing was left"
    click.echo(f"{kind} cluster {cluster}: removed {what}")


@cluster.command("status")
@_remote_option
@_cluster_option
def status(kind: str, cluster: str) -> int:
    """Show the nodes, their addresses and whether each answers."""
    remote = _existing(kind, cluster)
    if remote is None:
        click.echo(f"{kind} cluster {cluster}: not up")
        return 1
    return _print_nodes(remote, tuple(remote.nodes()))


def _existing(kind: str, cluster: str) -> Any:
    if kind == "local":
        from jepsy.control.local import LocalRemote, load_state

        state = load_state(cluster)
        if not state or not state.get("nodes"):
            return None
        nodes = tuple(state["nodes"])
        return LocalRemote(nodes, cluster=cluster, subnet=state["subnet"])
    from jepsy.control.docker import DockerRemote

    return DockerRemote.attach(cluster)


def _print_nodes(remote: Any, names: tuple[str, ...]) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{remote.kind} cluster {remote.cluster}")
    for col in ("node", "address", "answers"):
        table.add_column(col)
    bad = 0
    for n in names:
        try:
            remote.exec(n, ["true"], timeout=5)
            ok = "yes"
        except RemoteError as e:
            ok = f"no ({e.message})"
            bad += 1
        table.add_row(n, remote.address(n), ok)
    Console().print(table)
    return 1 if bad else 0


@click.group("docker")
def docker() -> None:
    """Docker helpers."""


@docker.command("build-image")
@click.option("--tag", default="jepsy-node:latest", show_default=True, help="Image tag to create.")
@click.option(
    "--base",
    default=None,
    help="Build FROM this local image (apt-get inside) instead of debootstrap.",
)
@click.option(
    "--packages",
    default=None,
    help="Comma-separated Debian packages (replaces the default list; see docs/remotes.md).",
)
@click.option("--extra-packages", default=None, help="Comma-separated packages added to the list.")
@click.option("--mirror", default=None, help="Debian mirror (default: the one apt uses here).")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite.")
@click.option("--force", is_flag=True, help="Rebuild even if the tag exists.")
def build_image(
    tag: str,
    base: str | None,
    packages: str | None,
    extra_packages: str | None,
    mirror: str | None,
    suite: str,
    force: bool,
) -> None:
    """Build the node image without any registry (debootstrap + docker import)."""
    from jepsy.control import image

    pkgs = (
        [p for p in packages.split(",") if p]
        if packages is not None
        else list(image.DEFAULT_PACKAGES)
    )
    if extra_packages:
        pkgs += [p for p in extra_packages.split(",") if p]
    built = image.build_image(
        tag=tag, base=base, packages=pkgs, mirror=mirror, suite=suite, force=force
    )
    click.echo(f"{tag}: {built}")
