"""Real clusters for tests, on every remote backend.

``cluster(kind, name=..., subnet=...)`` is a context manager that brings up
nodes on one backend and tears them down (checking nothing is left behind)::

    with cluster("local", name="jrdemo", subnet="10.91.50.0/24") as r:
        r.exec("n1", ["true"])

``remote_fixture(...)`` makes a module-scoped pytest fixture parametrised over
the backends, so one suite runs on all three.  Each engineer passes their
own name prefix and subnets, so suites running at the same time on one
machine never touch each other's clusters::

    from tests.remotes import remote_fixture

    remote = remote_fixture("jn", {"local": "10.92.1.0/24", "docker": "10.92.2.0/24",
                                   "ssh": "10.92.3.0/24"})

    @pytest.mark.integration
    def test_something(remote):        # runs three times: local, docker, ssh
        remote.exec("n1", ["true"])

Backends:

- ``local``: network namespaces (root).
- ``docker``: containers of the node image (``JEPSY_NODE_IMAGE``, default
  ``jepsy-node:latest``; built by ``jepsy docker build-image``) against the
  running dockerd.
- ``ssh``: sshd started inside each node of a local namespace cluster, with a
  host key generated for the cluster and a known_hosts file written from
  it, so strict host key checking is exercised.  ``remote.local`` is the
  underlying :class:`LocalRemote`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from jepsy.control import Remote
from jepsy.control.local import LocalRemote, leftovers
from tests.conftest import need, need_binary, need_root

KINDS = ("local", "docker", "ssh")
NODE_IMAGE = os.environ.get("JEPSY_NODE_IMAGE", "jepsy-node:latest")


def node_names(n: int) -> tuple[str, ...]:
    return tuple(f"n{i}" for i in range(1, n + 1))


def docker_client() -> Any:
    """A docker SDK client for the running dockerd, or skip/fail (CI) if none answers."""
    try:
        import docker
    except ImportError:
        need(False, "needs the docker SDK (pip install jepsy[docker])")
    client = None
    try:
        client = docker.from_env(timeout=20)
        client.ping()
    except Exception as e:
        if client is not None:
            client.close()  # its socket, or the skip leaves a ResourceWarning behind
        need(False, f"needs a running dockerd ({e})")
    return client  # the caller closes it


def need_docker_image(image: str = NODE_IMAGE) -> None:
    client = docker_client()
    try:
        client.images.get(image)
    except Exception:
        need(False, f"needs the node image {image} (jepsy docker build-image --tag {image})")
    finally:
        client.close()


def need_backend(kind: str) -> None:
    """Skip (or fail under CI) unless backend ``kind`` can run here."""
    if kind in ("local", "ssh"):
        need_root()
        need_binary("ip")
        need_binary("iptables")
    if kind == "ssh":
        need_binary("sshd")
        need_binary("ssh-keygen")
    if kind == "docker":
        need_docker_image()


def _ssh_material(workdir: Path) -> dict[str, Path]:
    """A client key and a host key, generated for one cluster."""
    keys = {"client": workdir / "id_ed25519", "host": workdir / "ssh_host_ed25519_key"}
    for path in keys.values():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path), "-C", "jepsy-test"],
            check=True,
            capture_output=True,
            timeout=30,
        )
    auth = workdir / "authorized_keys"
    shutil.copyfile(f"{keys['client']}.pub", auth)
    auth.chmod(0o600)
    keys["authorized_keys"] = auth
    return keys


def start_sshd(local: LocalRemote, workdir: Path) -> dict[str, Any]:
    """Start sshd in every node of ``local``; return SSHRemote options for them."""
    sshd = need_binary("sshd")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    keys = _ssh_material(workdir)
    host_pub = Path(f"{keys['host']}.pub").read_text().split()
    known = workdir / "known_hosts"
    lines = []
    pids: dict[str, int] = {}
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    for node in local.nodes():
        addr = local.address(node)
        cfg = workdir / f"sshd_config.{node}"
        cfg.write_text(
            f"Port 22\nListenAddress {addr}\nHostKey {keys['host']}\n"
            f"PidFile {workdir}/sshd.{node}.pid\n"
            "PermitRootLogin yes\nPubkeyAuthentication yes\n"
            f"AuthorizedKeysFile {keys['authorized_keys']}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UseDNS no\nUsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n"
            "MaxStartups 100:30:200\nMaxSessions 100\n"
            # An empty HOME: root's login shell must not source the machine's
            # ~/.bashrc (here it runs `pyenv init`, whose rehash lock made
            # sessions slow and, when one was killed, hang).
            f"SetEnv HOME={home}\n"
        )
        subprocess.run([sshd, "-t", "-f", str(cfg)], check=True, capture_output=True, timeout=30)
        pids[node] = local.spawn(
            node, [sshd, "-D", "-e", "-f", str(cfg)], log=str(workdir / f"sshd.{node}.log")
        )
        lines.append(f"{addr} {host_pub[0]} {host_pub[1]}\n")
    known.write_text("".join(lines))
    return {
        "hosts": {n: local.address(n) for n in local.nodes()},
        "key_file": str(keys["client"]),
        "known_hosts": str(known),
        "user": "root",
        "sshd_pids": pids,
    }


def wait_port(host: str, port: int, *, timeout: float = 10.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def docker_leftovers(name: str) -> dict[str, list[str]]:
    """Containers and networks labelled with cluster ``name``."""
    from jepsy.control.docker import leftovers as dl

    return dl(name)


def assert_clean(kind: str, name: str, pids: Sequence[int] = ()) -> None:
    """Nothing of cluster ``name`` is left: namespaces, links, FORWARD rules,
    containers, networks, and none of ``pids`` (host pids) is alive."""
    if kind in ("local", "ssh"):
        left = leftovers(name)
        assert left == {"namespaces": [], "links": [], "forward_rules": []}, left
    if kind == "docker":
        left = docker_leftovers(name)
        assert left == {"containers": [], "networks": []}, left
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists():
            with contextlib.suppress(OSError):
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
                assert state in ("Z", "X"), f"pid {pid} still alive (state {state})"


@contextlib.contextmanager
def cluster(
    kind: str,
    *,
    name: str,
    subnet: str,
    nodes: int | Sequence[str] = 5,
    **opts: Any,
) -> Iterator[Remote]:
    """Bring up a cluster named ``name`` on backend ``kind`` in ``subnet``;
    tear it down after, even on errors."""
    need_backend(kind)
    names = node_names(nodes) if isinstance(nodes, int) else tuple(nodes)
    if kind == "local":
        r: Remote = LocalRemote(names, cluster=name, subnet=subnet, **opts)
        with r:  # type: ignore[attr-defined]
            yield r
        return
    if kind == "docker":
        from jepsy.control.docker import DockerRemote

        opts.setdefault("image", NODE_IMAGE)
        d = DockerRemote(names, cluster=name, subnet=subnet, **opts)
        with d:
            yield d
        return
    if kind == "ssh":
        from jepsy.control.ssh import SSHRemote

        with (
            tempfile.TemporaryDirectory(prefix=f"jepsy-{name}-") as tmp,
            LocalRemote(names, cluster=name, subnet=subnet) as local,
        ):
            ssh_opts = start_sshd(local, Path(tmp))
            sshd_pids = ssh_opts.pop("sshd_pids")
            for n in names:
                wait_port(local.address(n), 22)
            # The SSH "hosts" share this machine's filesystem: keep each
            # cluster's node directories apart (the local cluster's own).
            ssh_opts["base_dir"] = str(local.base_dir)
            ssh_opts.update(opts)
            with SSHRemote(names, **ssh_opts) as s:
                # for tests that need the machinery behind the SSH hosts
                s.local = local  # type: ignore[attr-defined]
                s.ssh_opts = ssh_opts  # type: ignore[attr-defined]
                s.sshd_pids = sshd_pids  # type: ignore[attr-defined]
                yield s
        return
    raise ValueError(f"unknown remote kind {kind!r}")


def remote_fixture(
    prefix: str,
    subnets: Mapping[str, str],
    *,
    nodes: int = 5,
    kinds: Sequence[str] = KINDS,
    scope: str = "module",
) -> Callable[..., Any]:
    """A pytest fixture yielding a set-up remote, parametrised over ``kinds``.

    Cluster names are ``<prefix><kind initial>`` (``jrl``, ``jrd``, ``jrs``);
    ``subnets`` gives one /24 per kind.  The fixture checks after teardown
    that nothing was left behind."""

    @pytest.fixture(scope=scope, params=list(kinds))  # type: ignore[misc]
    def _remote(request: pytest.FixtureRequest) -> Iterator[Remote]:
        kind = request.param
        name = f"{prefix}{kind[0]}"
        with cluster(kind, name=name, subnet=subnets[kind], nodes=nodes) as r:
            yield r
        assert_clean(kind, name)

    return _remote  # type: ignore[no-any-return]
