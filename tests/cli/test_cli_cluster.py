"""`jepsy cluster up|down|status` and `jepsy docker build-image` through click."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from jepsy.cli import EXIT_BAD_ARGS, cli
from jepsy.cli.cluster import parse_nodes
from jepsy.control.local import LocalRemote, leftovers
from jepsy.errors import ConfigError, SetupError
from tests.conftest import need_root
from tests.remotes import assert_clean


def test_parse_nodes() -> None:
    assert parse_nodes("3") == ("n1", "n2", "n3")
    assert parse_nodes("a, b,c") == ("a", "b", "c")
    with pytest.raises(ConfigError):
        parse_nodes("0")
    with pytest.raises(ConfigError):
        parse_nodes(" , ")


def test_bad_cluster_name_is_a_usage_error() -> None:
    res = CliRunner().invoke(cli, ["cluster", "down", "--cluster", "No Such"])
    assert res.exit_code == EXIT_BAD_ARGS
    assert "bad cluster name" in res.output


@pytest.mark.integration
def test_up_status_down_local() -> None:
    need_root()
    run = CliRunner()
    args = ["--cluster", "jrcl"]
    res = run.invoke(cli, ["cluster", "up", "--nodes", "3", "--subnet", "10.91.32.0/24", *args])
    try:
        assert res.exit_code == 0, res.output
        assert "10.91.32.13" in res.output
        assert len(leftovers("jrcl")["namespaces"]) == 3
        res = run.invoke(cli, ["cluster", "status", *args])
        assert res.exit_code == 0, res.output
        assert res.output.count("yes") == 3
        # a run with the same nodes adopts it, subnet included, and leaves it up
        with LocalRemote(["n1", "n2", "n3"], cluster="jrcl") as r:
            assert r.address("n3") == "10.91.32.13"
        assert len(leftovers("jrcl")["namespaces"]) == 3
        # a run with other nodes refuses to replace it
        with pytest.raises(SetupError, match="jepsy cluster down --cluster jrcl"):
            LocalRemote(["n1", "n2"], cluster="jrcl").setup()
        assert len(leftovers("jrcl")["namespaces"]) == 3
    finally:
        res = run.invoke(cli, ["cluster", "down", *args])
    assert res.exit_code == 0, res.output
    assert_clean("local", "jrcl")
    res = run.invoke(cli, ["cluster", "status", *args])
    assert res.exit_code == 1 and "not up" in res.output
