"""Shared test helpers.

Tests that need root, a daemon or a binary call :func:`need`.  Outside CI a
missing prerequisite skips the test with the reason; with ``CI=true`` it
fails instead, so CI proves every integration test really ran.
"""

from __future__ import annotations

import os
import shutil
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
