"""DockerRemote specifics: the node image, name resolution, DOCKER_HOST,
adopting a `jepsy cluster up --remote docker` cluster, clear errors."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from jepsy.cli import cli
from jepsy.control.docker import DockerRemote, leftovers
from jepsy.control.image import build_image, debian_mirror
from jepsy.errors import SetupError
from tests.remotes import NODE_IMAGE, assert_clean, docker_client, need_backend

pytestmark = pytest.mark.integration


def test_debian_mirror_is_a_url() -> None:
    assert debian_mirror().startswith(("http://", "https://"))


def test_node_image_has_what_suites_and_nemeses_need() -> None:
    need_backend("docker")
    with DockerRemote(
        ["n1", "n2"],
        cluster="jrdi",
        image=NODE_IMAGE,
        subnet="10.91.60.0/24",
        docker_host="unix:///var/run/docker.sock",
    ) as r:
        for exe in (
            "etcd",
            "etcdctl",
            "redis-server",
            "redis-cli",
            "redis-sentinel",
            "iptables",
            "ip",
            "ps",
            "gcc",
            "sshd",
            "timeout",
            "setsid",
        ):
            assert r.exec("n1", ["sh", "-c", f"command -v {exe}"], check=False).exit_code == 0, exe
        # the other nodes resolve by name inside the cluster
        assert r.exec("n1", ["getent", "hosts", "n2"]).out.split()[0] == r.address("n2")
        # NET_ADMIN: iptables works inside
        r.exec("n1", ["iptables", "-A", "INPUT", "-s", r.address("n2"), "-j", "DROP"])
        assert "DROP" in r.exec("n1", ["iptables", "-S", "INPUT"]).out
    assert_clean("docker", "jrdi")


def test_existing_image_is_not_rebuilt() -> None:
    need_backend("docker")
    client = docker_client()
    try:
        ident = client.images.get(NODE_IMAGE).id
    finally:
        client.close()
    assert build_image(tag=NODE_IMAGE) == ident


def test_docker_host_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    need_backend("docker")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    with pytest.raises(SetupError, match=re.escape("tcp://127.0.0.1:9")):
        DockerRemote(["n1"], cluster="jrde").setup()
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert DockerRemote.attach("jrdnone") is None


def test_clear_errors() -> None:
    need_backend("docker")
    with pytest.raises(SetupError, match="build-image"):
        DockerRemote(["n1"], cluster="jrde", image="jepsy-no-such-image:x").setup()
    with pytest.raises(
        SetupError, match=re.escape("no Docker engine answers at tcp://127.0.0.1:9")
    ):
        DockerRemote(["n1"], cluster="jrde", docker_host="tcp://127.0.0.1:9").setup()
    with pytest.raises(SetupError, match="not present locally"):
        build_image(tag="jepsy-test-never:x", base="jepsy-no-such-base:x")
    assert_clean("docker", "jrde")


def test_cluster_up_is_adopted_then_down_removes_it() -> None:
    need_backend("docker")
    run = CliRunner()
    args = ["--remote", "docker", "--cluster", "jrda"]
    res = run.invoke(
        cli,
        [
            "cluster",
            "up",
            "--nodes",
            "2",
            "--subnet",
            "10.91.61.0/24",
            "--image",
            NODE_IMAGE,
            *args,
        ],
    )
    try:
        assert res.exit_code == 0, res.output
        before = leftovers("jrda")
        assert len(before["containers"]) == 2 and before["networks"] == ["jrda-net"]
        r = DockerRemote(["n1", "n2"], cluster="jrda", image=NODE_IMAGE)  # its subnet is taken
        r.setup()
        assert r.address("n2") == "10.91.61.12"
        pid = r.spawn("n2", ["sleep", "300"], log="/tmp/s.log")
        r.teardown()  # adopted: the containers stay, the spawned process goes
        assert leftovers("jrda") == before
        res = run.invoke(cli, ["cluster", "status", *args])
        assert res.exit_code == 0 and res.output.count("yes") == 2, res.output
        again = DockerRemote.attach("jrda")
        assert again is not None
        assert again.exec("n2", ["sh", "-c", f"test -d /proc/{pid} || echo gone"]).out == "gone"
        again.teardown()
        with pytest.raises(SetupError, match="cluster down --remote docker"):
            DockerRemote(["n1", "n2", "n3"], cluster="jrda", image=NODE_IMAGE).setup()
        assert leftovers("jrda") == before
    finally:
        res = run.invoke(cli, ["cluster", "down", *args])
    assert res.exit_code == 0, res.output
    assert_clean("docker", "jrda")


@pytest.mark.integration
def test_no_output_is_lost_under_many_concurrent_execs() -> None:
    """Output written right after `docker exec` starts used to be lost now and
    then (it landed in the HTTP reader's buffer); every exec must return
    exactly its own output."""
    import threading

    from tests.remotes import cluster

    with cluster("docker", name="jrx", subnet="10.91.78.0/24") as r:
        got: list[str] = []
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for j in range(10):
                    got.append(r.exec(r.nodes()[(i + j) % 5], ["echo", f"{i}.{j}"]).out)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors
        assert sorted(got) == sorted(f"{i}.{j}" for i in range(20) for j in range(10))
        assert r.exec("n1", ["cat"], stdin=b"a\nb").out == "a\nb"
