"""Nodes as Docker containers, through the docker SDK (``pip install jepsy[docker]``).

One user-defined bridge network ``<cluster>-net`` with a fixed subnet
(gateway ``.1``; node *i* at ``.(10+i)``), one container ``<cluster>-<node>``
per node from the node image (``jepsy docker build-image``), started with
``NET_ADMIN`` (iptables inside for partitions) and ``--init`` (reaps
daemons' zombies).  Containers and the network carry the label
``jepsy.cluster=<cluster>``: that is how teardown and ``jepsy cluster down
--remote docker`` find everything, including the leftovers of a killed run.

Inside a container the other nodes resolve by their node names (network
aliases).  Works against a remote engine too (``docker_host=`` or
``DOCKER_HOST``); then :meth:`DockerRemote.address` is only reachable from
the control node if the engine's bridge is routed to it.

exec runs through the exec API on a raw socket: stdin is streamed in, stdout
and stderr are read separately, the command is wrapped in ``timeout`` inside
the container so it dies with its time limit, and the socket read has a
deadline too.  upload/download use tar archives (``put_archive`` /
``get_archive``).

By example::

    with DockerRemote(["n1", "n2", "n3"], cluster="demo", subnet="10.89.5.0/24") as r:
        r.exec("n1", ["getent", "hosts", "n2"]).out     # "10.89.5.12  n2"
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import os
import posixpath
import socket
import struct
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jepsy.control import (
    ExecResult,
    SetupTeardown,
    check_argv,
    cleanup_exec,
    kill_spawned,
    raise_for_exit,
    spawn_via_shell_started,
)
from jepsy.control.image import DEFAULT_TAG, docker_client, image_exists
from jepsy.control.local import validate_cluster_name
from jepsy.errors import ConfigError, RemoteError, RemoteTimeout, SetupError

log = logging.getLogger(__name__)

LABEL = "jepsy.cluster"
NODE_LABEL = "jepsy.node"
PERSISTENT_LABEL = "jepsy.persistent"
DEFAULT_SUBNET = "10.89.0.0/24"
NODE_BASE_DIR = "/var/lib/jepsy"


class DockerRemote(SetupTeardown):
    """Nodes as containers on a user-defined network.  See the module doc.

    - ``nodes``: node names.  ``cluster``: names containers (``<cluster>-<node>``),
      the network (``<cluster>-net``) and the label value.
    - ``image``: the node image (built by ``jepsy docker build-image``).
    - ``subnet``: the network's IPv4 subnet (default: the running cluster's, else
      ``10.89.0.0/24``).  ``docker_host``: engine URL
      (default: ``DOCKER_HOST`` or the local socket).
    - ``persistent``: made to outlive runs (``jepsy cluster up``): a later
      remote with other nodes refuses to replace it instead of removing it.
    """

    kind = "docker"

    def __init__(
        self,
        nodes: Sequence[str] = ("n1", "n2", "n3", "n4", "n5"),
        *,
        cluster: str = "jepsy",
        image: str = DEFAULT_TAG,
        subnet: str | None = None,
        docker_host: str | None = None,
        persistent: bool = False,
    ) -> None:
        self.cluster = validate_cluster_name(cluster)
        self.persistent = persistent
        self._nodes = tuple(nodes)
        if not self._nodes or len(set(self._nodes)) != len(self._nodes):
            raise ConfigError(f"need distinct node names, got {list(self._nodes)!r}")
        self._subnet_given = subnet is not None
        self._set_subnet(subnet or DEFAULT_SUBNET)
        self.image = image
        self.docker_host = docker_host
        self.network = f"{cluster}-net"
        self._name = {n: f"{cluster}-{n}" for n in self._nodes}
        self._client: Any = None
        self._cid: dict[str, str] = {}
        self._spawned: dict[str, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()
        self._adopted = False

    def _set_subnet(self, subnet: str) -> None:
        try:
            self.subnet = ipaddress.IPv4Network(subnet, strict=False)
        except ValueError as e:
            raise ConfigError(f"bad subnet {subnet!r}: {e}; use e.g. 10.89.0.0/24") from e
        if self.subnet.num_addresses < len(self._nodes) + 12:
            raise ConfigError(f"subnet {subnet} is too small for {len(self._nodes)} nodes")
        self.gateway = str(self.subnet.network_address + 1)
        base = self.subnet.network_address + 11
        self._addr = {n: str(base + i) for i, n in enumerate(self._nodes)}

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def attach(cls, cluster: str, *, docker_host: str | None = None) -> DockerRemote | None:
        """A remote for the running containers of ``cluster`` (None if there are none)."""
        client = docker_client(docker_host)
        cs = client.containers.list(all=True, filters={"label": f"{LABEL}={cluster}"})
        if not cs:
            client.close()
            return None
        nets = client.networks.list(filters={"label": f"{LABEL}={cluster}"})
        subnet = DEFAULT_SUBNET
        if nets:
            cfg = nets[0].attrs.get("IPAM", {}).get("Config") or [{}]
            subnet = cfg[0].get("Subnet", subnet)
        net_name = f"{cluster}-net"

        def ip_of(c: Any) -> str:
            ip = c.attrs["NetworkSettings"]["Networks"].get(net_name, {}).get("IPAddress", "")
            return str(ip)

        cs.sort(key=lambda c: tuple(int(x) for x in (ip_of(c) or "0.0.0.0").split(".")))
        nodes = [c.labels.get(NODE_LABEL, c.name) for c in cs]
        r = cls(
            nodes,
            cluster=cluster,
            image=cs[0].attrs["Config"]["Image"],
            subnet=subnet,
            docker_host=docker_host,
        )
        r._client = client
        r._cid = {c.labels.get(NODE_LABEL, c.name): c.id for c in cs}
        r._addr = {c.labels.get(NODE_LABEL, c.name): ip_of(c) for c in cs}
        r._adopted = True
        return r

    def _docker(self) -> Any:
        if self._client is None:
            self._client = docker_client(self.docker_host)
        return self._client

    def setup(self) -> None:
        """Create the network and the containers (or adopt a matching running set)."""
        if self._cid:
            return
        t0 = time.monotonic()
        client = self._docker()
        if image_exists(client, self.image) is None:
            raise SetupError(
                f"node image {self.image!r} not found on the Docker engine; build it with "
                f"`jepsy docker build-image --tag {self.image}`"
            )
        existing = client.containers.list(all=True, filters={"label": f"{LABEL}={self.cluster}"})
        if existing and not self._subnet_given:
            # No subnet asked for: take the running cluster's (jepsy cluster up --subnet).
            for net in client.networks.list(filters={"label": f"{LABEL}={self.cluster}"}):
                cfg = (net.attrs.get("IPAM") or {}).get("Config") or [{}]
                if cfg[0].get("Subnet"):
                    self._set_subnet(cfg[0]["Subnet"])
        if existing and self._adoptable(existing):
            self._cid = {c.labels[NODE_LABEL]: c.id for c in existing}
            # `jepsy cluster up` containers stay after this run; leftovers of
            # a run with --leave-db-running are reused and then removed.
            self._adopted = self.persistent or any(c.labels.get(PERSISTENT_LABEL) for c in existing)
            log.info("adopted running docker cluster %s", self.cluster)
            return
        if any(c.labels.get(PERSISTENT_LABEL) and c.status == "running" for c in existing):
            raise SetupError(
                f"docker cluster {self.cluster!r} is up (jepsy cluster up) with other nodes "
                f"or subnet ({', '.join(sorted(c.name for c in existing))}); use those, another "
                f"--cluster name, or remove it: jepsy cluster down --remote docker "
                f"--cluster {self.cluster}"
            )
        if existing:
            log.warning("docker cluster %s has leftovers; removing them first", self.cluster)
        destroy(self.cluster, docker_host=self.docker_host, client=client)
        try:
            self._create(client)
        except BaseException:
            destroy(self.cluster, docker_host=self.docker_host, client=client)
            raise
        log.info(
            "docker cluster %s up: %d nodes in %.2f s",
            self.cluster,
            len(self._nodes),
            time.monotonic() - t0,
        )

    def _adoptable(self, containers: Sequence[Any]) -> bool:
        by_node = {c.labels.get(NODE_LABEL): c for c in containers}
        if set(by_node) != set(self._nodes):
            return False
        for n, c in by_node.items():
            nets = c.attrs["NetworkSettings"]["Networks"]
            if (
                c.status != "running"
                or nets.get(self.network, {}).get("IPAddress") != self._addr[n]
            ):
                return False
        return True

    def _create(self, client: Any) -> None:
        import docker.errors
        import docker.types

        labels = {LABEL: self.cluster}
        try:
            client.networks.create(
                self.network,
                driver="bridge",
                labels=labels,
                ipam=docker.types.IPAMConfig(
                    pool_configs=[
                        docker.types.IPAMPool(subnet=str(self.subnet), gateway=self.gateway)
                    ]
                ),
            )
        except docker.errors.APIError as e:
            raise SetupError(
                f"could not create docker network {self.network} with subnet {self.subnet}: "
                f"{e.explanation or e}; choose another subnet"
            ) from e
        api = client.api

        def create(node: str) -> tuple[str, str]:
            nc = api.create_networking_config(
                {
                    self.network: api.create_endpoint_config(
                        ipv4_address=self._addr[node], aliases=[node]
                    )
                }
            )
            hc = api.create_host_config(cap_add=["NET_ADMIN"], init=True)
            cid = api.create_container(
                self.image,
                command=["sleep", "infinity"],
                name=self._name[node],
                hostname=node,
                host_config=hc,
                networking_config=nc,
                labels={
                    **labels,
                    NODE_LABEL: node,
                    **({PERSISTENT_LABEL: "1"} if self.persistent else {}),
                },
            )["Id"]
            api.start(cid)
            return node, str(cid)

        with ThreadPoolExecutor(max_workers=min(8, len(self._nodes))) as pool:
            self._cid = dict(pool.map(create, self._nodes))
            list(
                pool.map(
                    lambda n: self.exec(n, ["mkdir", "-p", self.node_dir(n)], timeout=30),
                    self._nodes,
                )
            )

    def teardown(self) -> None:
        """Remove the containers and the network (a ``jepsy cluster up`` cluster
        stays up: its spawned processes are killed and its iptables rules flushed)."""
        if self._adopted and self._cid:
            for n in self._nodes:
                with self._lock:
                    pids = self._spawned.pop(n, [])
                with contextlib.suppress(Exception):
                    c = self._docker().containers.get(self._cid[n])
                    if c.status == "paused":
                        c.unpause()
                    kill_spawned(self, n, pids)
                    cleanup_exec(self, n, ["iptables", "-F"])
        else:
            destroy(self.cluster, docker_host=self.docker_host, client=self._client)
        self._cid = {}
        self._adopted = False
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    # ------------------------------------------------------------------ Remote

    def nodes(self) -> Sequence[str]:
        return self._nodes

    def address(self, node: str) -> str:
        return self._addr[self._known(node)]

    def node_dir(self, node: str) -> str:
        return f"{NODE_BASE_DIR}/{self._known(node)}"

    def container(self, node: str) -> Any:
        """The docker SDK container object of ``node``."""
        return self._docker().containers.get(self._container_id(node))

    def _known(self, node: str) -> str:
        if node not in self._name:
            raise ConfigError(
                f"unknown node {node!r} in docker cluster {self.cluster!r}; "
                f"nodes are {', '.join(self._nodes)}"
            )
        return node

    def _container_id(self, node: str) -> str:
        self._known(node)
        cid = self._cid.get(node)
        if cid is None:
            raise RemoteError(
                "no container for this node; call setup() first (or jepsy cluster up --remote docker)",
                node=node,
            )
        return cid

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 60.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        args = check_argv(node, argv)
        cid = self._container_id(node)
        api = self._docker().api
        # The command dies with its time limit inside the container too.  It
        # first waits for one line on stdin, which is sent only once we hold
        # the hijacked socket: output written before that could land in the
        # HTTP response's read buffer while the headers are parsed, and be
        # lost to a reader of the raw socket (seen as empty stdout under load).
        cmd = ["timeout", "-s", "KILL", f"{timeout:g}", "sh", "-c", _GATE, "sh", *args]
        t0 = time.monotonic()
        try:
            eid = api.exec_create(
                cid,
                cmd,
                stdin=True,
                stdout=True,
                stderr=True,
                environment=dict(env) if env else None,
            )["Id"]
            sock = api.exec_start(eid, socket=True)
        except Exception as e:
            raise RemoteError(f"docker exec failed: {e}", node=node, argv=args) from e
        raw: Any = getattr(sock, "_sock", sock)
        try:
            out, err, timed_out = _exchange(
                raw, b"\n" + (stdin or b""), deadline=t0 + timeout + 5, node=node, argv=args
            )
        finally:
            for closable in (sock, raw):
                with contextlib.suppress(Exception):
                    closable.close()
        code = api.exec_inspect(eid).get("ExitCode")
        elapsed = time.monotonic() - t0
        if timed_out or (code == 137 and elapsed >= timeout):
            raise RemoteTimeout(
                f"command did not finish within {timeout:g} s (killed)",
                node=node,
                argv=args,
                stdout=out,
                stderr=err,
            )
        if code is None:
            code = -1
        r = ExecResult(node=node, argv=args, exit_code=int(code), stdout=out, stderr=err)
        return raise_for_exit(r) if check else r

    def spawn(
        self,
        node: str,
        argv: Sequence[str],
        *,
        log: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> int:
        args = check_argv(node, argv)
        pid, start = spawn_via_shell_started(self, node, args, log=log, env=env, cwd=cwd)
        with self._lock:
            self._spawned.setdefault(node, []).append((pid, start))
        return pid

    def upload(self, node: str, local: str | os.PathLike[str], remote: str) -> None:
        cid = self._container_id(node)
        data = Path(local).read_bytes()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(remote))
            info.size = len(data)
            info.mode = Path(local).stat().st_mode & 0o7777
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        parent = posixpath.dirname(remote) or "/"
        self.exec(node, ["mkdir", "-p", parent], timeout=30)
        try:
            ok = self._docker().api.put_archive(cid, parent, buf.getvalue())
        except Exception as e:
            raise RemoteError(f"upload {local} -> {remote} failed: {e}", node=node) from e
        if not ok:
            raise RemoteError(f"upload {local} -> {remote} failed", node=node)

    def download(self, node: str, remote: str, local: str | os.PathLike[str]) -> None:
        cid = self._container_id(node)
        try:
            stream, _stat = self._docker().api.get_archive(cid, remote)
            blob = b"".join(stream)
        except Exception as e:
            raise RemoteError(f"download {remote} -> {local} failed: {e}", node=node) from e
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            f = tar.extractfile(member) if member is not None else None
            if f is None:
                raise RemoteError(f"download {remote}: not a regular file", node=node)
            data = f.read()
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        Path(local).write_bytes(data)

    def __repr__(self) -> str:
        return (
            f"DockerRemote({list(self._nodes)!r}, cluster={self.cluster!r}, "
            f"image={self.image!r}, subnet={str(self.subnet)!r})"
        )


# Wait for the go line on stdin, then run the command with the rest of stdin.
_GATE = 'IFS= read -r _ || exit 125; exec "$@"'


def _exchange(
    raw: Any,
    stdin: bytes | None,
    *,
    deadline: float,
    node: str = "?",
    argv: Sequence[str] = (),
) -> tuple[bytes, bytes, bool]:
    """Send ``stdin`` (then half-close) and read docker's multiplexed
    stdout/stderr frames until EOF or ``deadline``.  Returns (out, err, timed_out).

    A connection that breaks mid-stream raises :class:`RemoteError`: the
    output would be incomplete, and must not pass for a finished command's."""
    if stdin is not None:

        def feed() -> None:
            with contextlib.suppress(OSError):
                raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
    bufs: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    pending = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(bufs[1]), bytes(bufs[2]), True
        raw.settimeout(min(left, 5.0))
        try:
            chunk = raw.recv(65536)
        except TimeoutError:
            continue
        except OSError as e:
            raise RemoteError(
                f"docker exec stream broke: {e}",
                node=node,
                argv=argv,
                stdout=bytes(bufs[1]),
                stderr=bytes(bufs[2]),
            ) from e
        if not chunk:
            break
        pending += chunk
        while len(pending) >= 8:
            stream, size = pending[0], struct.unpack(">I", pending[4:8])[0]
            if len(pending) < 8 + size:
                break
            bufs.get(stream, bufs[1]).extend(pending[8 : 8 + size])
            del pending[: 8 + size]
    return bytes(bufs[1]), bytes(bufs[2]), False


@contextlib.contextmanager
def _client(client: Any, docker_host: str | None) -> Iterator[Any]:
    """``client`` if given, else a new one that is closed afterwards."""
    if client is not None:
        yield client
        return
    own = docker_client(docker_host)
    try:
        yield own
    finally:
        own.close()


def leftovers(
    cluster: str, *, docker_host: str | None = None, client: Any = None
) -> dict[str, list[str]]:
    """Names of containers and networks labelled ``jepsy.cluster=<cluster>``."""
    flt = {"label": f"{LABEL}={cluster}"}
    with _client(client, docker_host) as c:
        return {
            "containers": sorted(x.name for x in c.containers.list(all=True, filters=flt)),
            "networks": sorted(n.name for n in c.networks.list(filters=flt)),
        }


def list_clusters(*, docker_host: str | None = None) -> list[str]:
    """Cluster names of all containers carrying the jepsy label."""
    with _client(None, docker_host) as c:
        cs = c.containers.list(all=True, filters={"label": LABEL})
        return sorted({x.labels[LABEL] for x in cs})


def destroy(
    cluster: str, *, docker_host: str | None = None, client: Any = None
) -> dict[str, list[str]]:
    """Remove every container and network labelled with ``cluster``.  Idempotent."""

    validate_cluster_name(cluster)
    with _client(client, docker_host) as c:
        return _destroy(cluster, c)


def _destroy(cluster: str, client: Any) -> dict[str, list[str]]:
    import docker.errors

    flt = {"label": f"{LABEL}={cluster}"}
    removed: dict[str, list[str]] = {"containers": [], "networks": []}
    containers = client.containers.list(all=True, filters=flt)

    def rm(c: Any) -> str:
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)
        return str(c.name)

    if containers:
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            removed["containers"] = sorted(pool.map(rm, containers))
    for net in client.networks.list(filters=flt):
        for attempt in range(20):
            try:
                net.remove()
                removed["networks"].append(net.name)
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:
                if attempt == 19:
                    raise
                time.sleep(0.1)
    return removed
