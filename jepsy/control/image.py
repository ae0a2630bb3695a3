"""Build the Docker node image without any registry.

Two ways, both ending in a local image (default tag ``jepsy-node:latest``):

- **debootstrap** (default): ``debootstrap --variant=minbase`` a Debian suite
  with the packages a suite needs, trim caches and docs, and ``docker
  import`` the tree.  Needs root, ``debootstrap`` and a Debian mirror (the
  one apt on this machine uses, unless ``mirror`` is given).  About 40-60 s.
- **from a local base image** (``base="debian:bookworm"`` or any image
  already loaded): ``apt-get install`` the packages in a container of it and
  commit the result.

The default packages cover the bundled suites (etcd, Redis + Sentinel) and
the nemeses (iptables, procps, gcc for the clock shim).  ZooKeeper pulls a
JRE (~200 MB), so it is not in the default list: add it with
``--extra-packages zookeeper``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jepsy.errors import SetupError

log = logging.getLogger(__name__)

DEFAULT_TAG = "jepsy-node:latest"
DEFAULT_PACKAGES: tuple[str, ...] = (
    "iproute2",
    "iptables",
    "procps",
    "psmisc",
    "ca-certificates",
    "etcd-server",
    "etcd-client",
    "redis-server",
    "redis-sentinel",
    "openssh-server",
    "gcc",
    "libc6-dev",
)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_TRIM = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
)
_PKG_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def docker_client(docker_host: str | None = None, *, timeout: int = 120) -> Any:
    """A docker SDK client (``DOCKER_HOST`` honoured), or a clear SetupError."""
    try:
        import docker
    except ImportError as e:
        raise SetupError(
            "the docker remote needs the docker SDK: pip install 'jepsy[docker]'"
        ) from e
    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:
        where = docker_host or os.environ.get("DOCKER_HOST") or "the local docker socket"
        raise SetupError(
            f"no Docker engine answers at {where} ({e}); start dockerd "
            "(scripts/setup-system.sh does) or set DOCKER_HOST"
        ) from e
    return client


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses (deb822 or one-line format)."""
    d822 = Path("/etc/apt/sources.list.d/debian.sources")
    if d822.exists():
        uris = suites = None
        for block in d822.read_text().split("\n\n"):
            for line in block.splitlines():
                if line.startswith("URIs:"):
                    uris = line.split(":", 1)[1].split()
                if line.startswith("Suites:"):
                    suites = line.split(":", 1)[1].split()
            if uris and suites and not any("security" in s for s in suites):
                return uris[0]
            uris = suites = None
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in line:
                url = next((p for p in parts[1:] if p.startswith(("http://", "https://"))), None)
                if url:
                    return url
    return DEFAULT_MIRROR


def image_exists(client: Any, tag: str) -> str | None:
    """The id of image ``tag``, or None."""
    import docker.errors

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return None


def build_image(
    *,
    tag: str = DEFAULT_TAG,
    base: str | None = None,
    packages: Sequence[str] = DEFAULT_PACKAGES,
    mirror: str | None = None,
    suite: str = "bookworm",
    force: bool = False,
    docker_host: str | None = None,
    timeout: float = 1200.0,
) -> str:
    """Build image ``tag`` (see the module doc) and return its id.  An existing
    image with that tag is kept unless ``force``."""
    for p in packages:
        if not _PKG_RE.match(p):
            raise SetupError(f"bad Debian package name {p!r} in the package list")
    client = docker_client(docker_host)
    try:
        return _build(
            client,
            tag=tag,
            base=base,
            packages=packages,
            mirror=mirror,
            suite=suite,
            force=force,
            timeout=timeout,
        )
    finally:
        client.close()


def _build(
    client: Any,
    *,
    tag: str,
    base: str | None,
    packages: Sequence[str],
    mirror: str | None,
    suite: str,
    force: bool,
    timeout: float,
) -> str:
    have = image_exists(client, tag)
    if have and not force:
        log.info("image %s exists (%s); not rebuilding (force=True rebuilds)", tag, have)
        return have
    t0 = time.monotonic()
    if base is not None:
        ident = _from_base(client, tag=tag, base=base, packages=packages, timeout=timeout)
    else:
        ident = _debootstrap(
            client,
            tag=tag,
            packages=packages,
            mirror=mirror or debian_mirror(),
            suite=suite,
            timeout=timeout,
        )
    log.info("built image %s (%s) in %.1f s", tag, ident, time.monotonic() - t0)
    return ident


def _debootstrap(
    client: Any,
    *,
    tag: str,
    packages: Sequence[str],
    mirror: str,
    suite: str,
    timeout: float,
) -> str:
    if os.geteuid() != 0:
        raise SetupError(
            "building the node image with debootstrap needs root: run with sudo, "
            "or name a local base image with --base"
        )
    exe = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(exe):
        raise SetupError(
            "building the node image needs debootstrap: apt-get install debootstrap, "
            "or name a local base image with --base"
        )
    with tempfile.TemporaryDirectory(prefix="jepsy-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        argv = [exe, "--variant=minbase"]
        if packages:
            argv.append("--include=" + ",".join(packages))
        argv += [suite, str(root), mirror]
        log.info("running %s", " ".join(argv))
        try:
            p = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise SetupError(f"debootstrap did not finish within {timeout:g} s") from e
        if p.returncode != 0:
            tail = (p.stdout + p.stderr).decode("utf-8", "replace")[-2000:]
            raise SetupError(
                f"debootstrap {suite} from {mirror} failed (exit {p.returncode}); "
                f"check the mirror and package names:\n{tail}"
            )
        for rel in _TRIM:
            d = root / rel
            if d.is_dir():
                for child in d.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        for f in (root / "var/cache/apt").glob("*.bin"):
            f.unlink(missing_ok=True)
        (root / "etc/hostname").write_text("node\n")
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
        )
        assert tar.stdout is not None
        try:
            out = client.api.import_image_from_stream(
                tar.stdout,
                repository=tag.rsplit(":", 1)[0] if ":" in tag.split("/")[-1] else tag,
                tag=tag.rsplit(":", 1)[1] if ":" in tag.split("/")[-1] else "latest",
                changes=['CMD ["sleep", "infinity"]'],
            )
        finally:
            tar.stdout.close()
            tar.wait(timeout=60)
        log.debug("docker import: %s", out)
    ident = image_exists(client, tag)
    if ident is None:
        raise SetupError(f"docker import of {tag} reported {out!r} but no image exists")
    return ident


def _from_base(client: Any, *, tag: str, base: str, packages: Sequence[str], timeout: float) -> str:
    if image_exists(client, base) is None:
        raise SetupError(
            f"base image {base!r} is not present locally; load it first "
            "(docker load / docker import) or drop --base to use debootstrap"
        )
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
        "apt-get install -y -q --no-install-recommends " + " ".join(packages) + "; "
        "apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*"
    )
    c = client.containers.run(base, ["sh", "-c", script], detach=True)
    try:
        res = c.wait(timeout=timeout)
        if res.get("StatusCode") != 0:
            tail = c.logs().decode("utf-8", "replace")[-2000:]
            raise SetupError(f"installing packages in {base} failed:\n{tail}")
        repo, _, t = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
        img = c.commit(repository=repo, tag=t, changes=['CMD ["sleep", "infinity"]'])
        return str(img.id)
    finally:
        c.remove(force=True)
