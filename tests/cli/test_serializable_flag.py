"""--serializable-reads: the etcd option issue 5 names, as a CLI flag."""

from __future__ import annotations

from click.testing import CliRunner

from jepsy.cli import cli
from jepsy.dbs.etcd import make_client


def test_flag_is_rejected_for_other_dbs_with_254() -> None:
    r = CliRunner().invoke(
        cli, ["test", "--db", "memory", "--serializable-reads", "--time-limit", "1"]
    )
    assert r.exit_code == 254
    assert "--serializable-reads applies to --db etcd" in r.output


def test_flag_reaches_the_etcd_client_as_the_option_does() -> None:
    assert make_client("register", {"serializable_reads": True}).serializable_reads is True
    assert make_client("register", {}).serializable_reads is False
