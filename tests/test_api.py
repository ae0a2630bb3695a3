"""The curated public API: pinned so that a change to it is deliberate."""

from __future__ import annotations

import jepsy

EXPECTED = [
    "DB",
    "Checker",
    "Client",
    "ClientError",
    "ConfigError",
    "ExecResult",
    "HasLogFiles",
    "HasPrimaries",
    "History",
    "HistoryError",
    "JepsyError",
    "Killable",
    "ModelError",
    "Nemesis",
    "Op",
    "Pausable",
    "Remote",
    "RemoteError",
    "Result",
    "RunResult",
    "SetupError",
    "Test",
    "__version__",
    "build_test",
    "compose",
    "noop_test",
    "read_history",
    "run",
    "write_history",
]


def test_public_api_is_pinned_and_sorted() -> None:
    assert jepsy.__all__ == EXPECTED
    assert sorted(jepsy.__all__, key=lambda s: (s.startswith("_"), s)) == sorted(
        EXPECTED, key=lambda s: (s.startswith("_"), s)
    )
    for name in jepsy.__all__:
        assert hasattr(jepsy, name), name


def test_errors_share_one_root() -> None:
    for name in (
        "ClientError",
        "ConfigError",
        "HistoryError",
        "ModelError",
        "RemoteError",
        "SetupError",
    ):
        assert issubclass(getattr(jepsy, name), jepsy.JepsyError)
