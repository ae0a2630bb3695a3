"""Shared test helpers.

Tests that need root, a daemon or a binary call :func:`need`.  Outside CI a
missing prerequisite skips the test with the reason; with ``CI=true`` it
fails instead, so CI proves every integration test really ran.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent
SHARED_HISTORIES = ROOT.parent / "shared" / "histories"


def need(condition: bool, why: str) -> None:
    """Skip (or, under CI=true, fail) unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but a prerequisite is missing: {why}", pytrace=False)
    pytest.skip(why)


def need_root() -> None:
    need(os.geteuid() == 0, "needs root (network namespaces, iptables)")


def need_binary(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    need(path is not None, f"needs the {name} binary (installed by .ci/run)")
    assert path is not None
    return path


def need_shared_histories() -> Path:
    need(
        SHARED_HISTORIES.is_dir(),
        f"needs ../shared/histories next to the project ({SHARED_HISTORIES})",
    )
    return SHARED_HISTORIES


# ---------------------------------------------------------------- leftovers
# The SSH and docker backends default to node directories /var/lib/jepsy/<node>
# on their hosts; the SSH test hosts share this machine's filesystem, so a test
# that used the default would leave /var/lib/jepsy/n1 .. behind here.  Every
# test (and the session as a whole) must leave none that it did not find.

NODE_BASE = Path("/var/lib/jepsy")


def node_dirs_here() -> set[str]:
    """The ``/var/lib/jepsy/n*`` paths that exist right now."""
    try:
        return {str(p) for p in NODE_BASE.glob("n*")}
    except OSError:
        return set()


_SESSION_NODE_DIRS: set[str] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _SESSION_NODE_DIRS.update(node_dirs_here())


@pytest.fixture(autouse=True)
def _no_node_dirs_left_behind() -> Iterator[None]:
    before = node_dirs_here()
    yield
    new = sorted(node_dirs_here() - before - _SESSION_NODE_DIRS)
    assert not new, f"the test left node directories behind: {new}"


@pytest.fixture(autouse=True)
def _garbage_freed_by_its_own_test() -> Iterator[None]:
    """A full collection after each test: what a test leaked in a reference
    cycle (a socket never closed, say) is finalized, with its
    ResourceWarning, in that test, not in whichever test the collector
    happens to run in later (the readers move live objects to the oldest
    generation, which makes "later" far off).  About 15% more suite time."""
    yield
    gc.collect()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Catches what module- and session-scoped fixtures leave at their teardown.
    new = sorted(node_dirs_here() - _SESSION_NODE_DIRS)
    if new:
        print(f"\nERROR: the test session left node directories behind: {new}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
