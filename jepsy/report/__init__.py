"""HTML report, plots, timeline and failure visualisation.

:func:`write_report` turns a run directory into ``report.html``;
:mod:`jepsy.report.digest` reads what the page shows of a history in one
pass (no :class:`~jepsy.history.Op` objects, so big runs report fast);
:mod:`jepsy.report.linear` draws linearizability failures;
:mod:`jepsy.report.svg` is the small SVG plotter the perf checker uses.

By example::

    >>> from jepsy.report import write_report
    >>> write_report(Path("store/latest"))  # doctest: +SKIP
"""

from jepsy.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
