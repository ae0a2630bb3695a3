"""Elle-style transactional consistency checking.

Histories of transactions over lists (``list-append``) or registers
(``rw-register``) are turned into a dependency graph between transactions
(write-write, write-read and read-write edges, optionally real-time and
process order), and cycles in that graph are classified as Adya's anomalies
(G0, G1c, G-single, G2) with a short story that explains each one.
Non-cycle anomalies (aborted and intermediate reads, internal
inconsistency, incompatible orders, duplicates, garbage reads) are found
directly.

By example::

    >>> from jepsy.checkers.elle import list_append
    >>> checker = list_append(consistency_models=("serializable",))
"""

from jepsy.checkers.elle.core import ANOMALY_DOCS, prohibited_anomalies
from jepsy.checkers.elle.list_append import ListAppendChecker, list_append
from jepsy.checkers.elle.rw_register import RWRegisterChecker, rw_register

__all__ = [
    "ANOMALY_DOCS",
    "ListAppendChecker",
    "RWRegisterChecker",
    "list_append",
    "prohibited_anomalies",
    "rw_register",
]
