"""Run jepsy against kvserver: ``jepsy test --db own-kv`` with the suite loaded.

Importing ``jepsy_kv`` registers the ``own-kv`` suite; the rest is jepsy's
own command line, so every ``jepsy test`` option works::

    sudo python3 examples/own-system/run.py --nodes n1,n2,n3 --nemesis partition \\
        --time-limit 20                                   # exits 0: linearizable
    sudo python3 examples/own-system/run.py --nodes n1,n2,n3 --nemesis partition \\
        --nemesis-targets one -o kv_bug=read-from-backups  # exits 1: stale reads
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jepsy_kv  # registers the own-kv suite

from jepsy.cli import cli

if __name__ == "__main__":
    assert jepsy_kv.SUITE.name == "own-kv"
    cli.main(["test", "--db", "own-kv", *sys.argv[1:]], prog_name="run.py")
