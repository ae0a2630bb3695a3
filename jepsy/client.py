"""The Client protocol: how workers talk to the system under test.

Lifecycle, per worker thread: ``client = proto.open(test, node)`` returns a
fresh client bound to ``node`` (the prototype in the test is never used for
operations itself); ``setup(test)`` once on the first client (e.g. create a
table); then ``invoke(test, op)`` for each op; ``teardown(test)`` once;
``close(test)`` on every opened client.

``invoke`` receives an ``invoke`` op and returns its completion: the same op
with ``type`` ``ok``/``fail``/``info`` and the result in ``value``.

Definite vs indefinite errors (Jepsen/Maelstrom): return ``fail`` (or raise
:class:`jepsy.errors.ClientError`) only when the operation *certainly did not
happen* (connection refused before sending, a CAS whose compare failed, a
"not leader" rejection before any write).  Anything else - a timeout, a lost
connection after sending, an unexpected exception - is ``info``: the runner
records any other exception as ``info``.  When in doubt, ``info``.

=====================================================  ==========
What the client saw                                    Record as
=====================================================  ==========
connection refused / node down before sending          ``fail``
request rejected before any effect ("not leader")      ``fail``
compare-and-set whose compare did not match            ``fail``
a read that failed (reads change nothing)              ``fail``
timeout after sending                                  ``info``
connection reset / closed after sending                ``info``
an unexpected exception                                ``info``
no answer within ``test.op_timeout`` (runner's call)   ``info``
=====================================================  ==========

What the runner does around a client: each worker thread opens its own
client (``open`` is retried before the next op if it failed; that op is
recorded ``fail`` since it was never sent).  After an ``info`` the worker's
process is retired: the client is closed and a new one opened for the next
process.  A call still running after ``op_timeout`` is abandoned on its
(daemon) thread - its late answer is discarded - so ``invoke`` need not
enforce the timeout itself, but it should not hold locks other clients need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from jepsy.core import Test
    from jepsy.history import Op


@runtime_checkable
class Client(Protocol):
    def open(self, test: Test, node: str) -> Client:
        """A new client connected (or ready to connect) to ``node``."""
        ...

    def setup(self, test: Test) -> None:
        """One-time setup of the data model, called on one opened client."""
        ...

    def invoke(self, test: Test, op: Op) -> Op:
        """Perform ``op`` (type ``invoke``) and return its completion."""
        ...

    def teardown(self, test: Test) -> None:
        """Undo ``setup``; called once at the end on one opened client."""
        ...

    def close(self, test: Test) -> None:
        """Release connections; called on every opened client."""
        ...


class NoopClient:
    """Completes every op ``ok`` with its own value."""

    def open(self, test: Test, node: str) -> NoopClient:
        return NoopClient()

    def setup(self, test: Test) -> None:
        pass

    def invoke(self, test: Test, op: Op) -> Op:
        return op.replace(type="ok")

    def teardown(self, test: Test) -> None:
        pass

    def close(self, test: Test) -> None:
        pass

    def __repr__(self) -> str:
        return "NoopClient()"
