"""Fault injection for jepsy: imported as ``jepsy.nemeses``.

One module per fault, each with its nemesis and a :func:`package` (nemesis +
schedule + healing schedule + plot colours, see :mod:`jepsy.nemeses.core`):

- :mod:`jepsy.nemeses.partition`: ``start-partition`` / ``stop-partition``
  (grudges from :mod:`jepsy.net`, iptables DROP rules, heals checked by TCP).
- :mod:`jepsy.nemeses.kill`: ``kill`` / ``start`` (needs a Killable DB).
- :mod:`jepsy.nemeses.pause`: ``pause`` / ``resume`` (needs a Pausable DB).
- :mod:`jepsy.nemeses.clock`: ``clock-bump`` / ``clock-strobe`` /
  ``clock-reset`` (an LD_PRELOAD shim shipped as C source).
- :mod:`jepsy.nemeses.packet_loss`: ``start-packet-loss`` / ``stop-packet-loss``.
- :mod:`jepsy.nemeses.combined`: ``package(["partition", "kill"], ...)``, what
  ``--nemesis`` builds.

By example::

    from jepsy.nemeses.combined import package
    pkg = package(["partition", "pause"], interval=10, targets=["majority"], db=db)

See docs/nemeses.md for every op, target and cleanup guarantee.
"""
