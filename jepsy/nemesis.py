"""The Nemesis protocol: fault injection driven by the nemesis generator.

``setup(test)`` returns the nemesis ready to use; ``invoke(test, op)``
receives an ``invoke`` op from the nemesis thread (process ``"nemesis"``,
e.g. ``f="start-partition", value={"n1": ["n2", "n3"], ...}``) and returns
its completion, normally type ``info`` with what was actually done in
``value``; ``teardown(test)`` undoes every fault still in force (heal,
resume, restart).  ``fs()`` names the ``f`` values it handles, so nemeses
compose (:mod:`jepsy.nemeses.combined`).

Every nemesis action and its outcome reaches the history: the runner records
the invoke and the completion, and an exception becomes an ``info``
completion carrying the error.
"""

from __future__ import annotations

from collections.abc import Set
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op


@runtime_checkable
class Nemesis(Protocol):
    def setup(self, test: Test) -> Nemesis:
        """Prepare; return the nemesis to use for this run."""
        ...

    def invoke(self, test: Test, op: Op) -> Op:
        """Apply the fault ``op`` describes; return its completion."""
        ...

    def teardown(self, test: Test) -> None:
        """Undo every fault still in force; idempotent."""
        ...

    def fs(self) -> Set[str]:
        """The ``f`` values this nemesis handles."""
        ...


class NoopNemesis:
    """Handles nothing; completes any op as ``info``."""

    def setup(self, test: Test) -> NoopNemesis:
        return self

    def invoke(self, test: Test, op: Op) -> Op:
        return op.replace(type="info")

    def teardown(self, test: Test) -> None:
        pass

    def fs(self) -> Set[str]:
        return frozenset()

    def __repr__(self) -> str:
        return "NoopNemesis()"
