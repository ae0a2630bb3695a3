"""``jepsy check``: check history files (being written)."""

from __future__ import annotations

import click


@click.command()
@click.argument("histories", nargs=-1, required=True)
def check(histories: tuple[str, ...]) -> None:
    """Check HISTORY files for linearizability."""
    raise click.UsageError("jepsy check is not implemented yet")
