"""Custom workloads from Python files and installed packages.

Two ways to add a workload without touching jepsy:

- a file: ``jepsy test --workload ./my_workload.py``.  The file must expose
  ``workload``, either a :class:`~jepsy.workloads.core.Workload` or a
  zero-argument factory returning one (``def workload() -> Workload``).
- an installed package: declare an entry point in the group
  ``jepsy.workloads`` whose object is a ``Workload`` or such a factory::

      [project.entry-points."jepsy.workloads"]
      my-kv = "my_pkg.jepsy_workload:workload"

Loaded workloads are registered, so ``jepsy list`` shows them too.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jepsy.errors import ConfigError

if TYPE_CHECKING:
    from jepsy.workloads.core import Workload

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jepsy.workloads"


def _as_workload(obj: Any, where: str) -> Workload:
    from jepsy.workloads.core import Workload

    if isinstance(obj, Workload):
        return obj
    if callable(obj):
        try:
            made = obj()
        except Exception as e:
            raise ConfigError(
                f"{where}: calling the workload factory raised {type(e).__name__}: {e}"
            ) from e
        if isinstance(made, Workload):
            return made
        raise ConfigError(
            f"{where}: the workload factory returned {type(made).__name__}, not a Workload"
        )
    raise ConfigError(
        f"{where}: `workload` is a {type(obj).__name__}; expected a Workload "
        "or a zero-argument function returning one"
    )


def load_workload_file(path: str | Path) -> Workload:
    """Import ``path`` and return (and register) its ``workload``.

    Raises :class:`ConfigError` for a missing file, an import error or a
    file without a proper ``workload``."""
    from jepsy.workloads.core import register_workload

    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise ConfigError(f"workload file {str(path)!r} does not exist (give a path to a .py file)")
    mod_name = f"jepsy_user_workload_{abs(hash(str(p))):x}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise ConfigError(f"workload file {str(p)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise ConfigError(
            f"workload file {str(p)!r} failed to import: {type(e).__name__}: {e}"
        ) from e
    if not hasattr(module, "workload"):
        raise ConfigError(
            f"workload file {str(p)!r} has no `workload`; define `workload = Workload(...)` "
            "or `def workload() -> Workload`"
        )
    w = _as_workload(module.workload, str(p))
    register_workload(w)
    return w


def load_entry_point_workloads() -> list[Workload]:
    """Load and register every workload of the ``jepsy.workloads`` entry-point group.

    A plugin that fails to load is logged and skipped, so one broken package
    does not hide the others."""
    from jepsy.workloads.core import register_workload

    out: list[Workload] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            w = _as_workload(ep.load(), f"entry point {ep.name} ({ep.value})")
        except Exception as e:
            log.warning("skipping workload plugin %s (%s): %s", ep.name, ep.value, e)
            continue
        register_workload(w)
        out.append(w)
    return out


__all__ = ["ENTRY_POINT_GROUP", "load_entry_point_workloads", "load_workload_file"]
