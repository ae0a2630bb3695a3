"""Jepsen EDN histories (reader being written)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from jepsy.errors import HistoryError
from jepsy.history import History, Op


def read_edn_history(path: str | os.PathLike[str]) -> History:
    raise HistoryError("EDN reading is not implemented yet", source=os.fspath(path))


def write_edn_history(history: Iterable[Op], path: str | os.PathLike[str]) -> None:
    raise HistoryError("EDN writing is not implemented yet", source=os.fspath(path))
