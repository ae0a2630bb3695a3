"""The ``jepsy`` command line.

Exit codes (Jepsen's): 0 valid, 1 invalid, 2 unknown, 254 bad arguments or
unreadable input, 255 jepsy itself crashed.  click's own usage errors (which
click exits with 2) are mapped to 254 here, so 2 always means "unknown".

Each command lives in its own module of this package and is registered
below; click and rich are used only inside ``jepsy.cli``.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from jepsy.checkers.core import Validity
from jepsy.errors import JepsyError

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2
EXIT_BAD_ARGS = 254
EXIT_CRASH = 255


def exit_code_for(valid: Validity) -> int:
    """0 for True, 1 for False, 2 for "unknown"."""
    if valid is True:
        return EXIT_VALID
    if valid is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN


class JepsyGroup(click.Group):
    """A click group whose ``main`` maps errors to jepsy's exit codes."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as e:
            e.show()
            sys.exit(EXIT_BAD_ARGS)
        except JepsyError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_BAD_ARGS)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except SystemExit:
            raise
        except BaseException:
            click.echo("jepsy crashed (this is a bug):", err=True)
            click.echo(traceback.format_exc(), err=True)
            sys.exit(EXIT_CRASH)
        if isinstance(rv, int) and not isinstance(rv, bool):
            sys.exit(rv)
        sys.exit(0)


@click.group(cls=JepsyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jepsy")
def cli() -> None:
    """Find consistency bugs in distributed systems, the way Jepsen does."""


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="jepsy")


def _register() -> None:
    from jepsy.cli import check as _check

    cli.add_command(_check.check)

    from jepsy.cli import cluster as _cluster

    cli.add_command(_cluster.cluster)
    cli.add_command(_cluster.docker)

    from jepsy.cli import run as _run

    cli.add_command(_run.test_cmd)
    cli.add_command(_run.analyze)
    cli.add_command(_run.list_cmd)


_register()
