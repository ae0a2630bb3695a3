"""One error tree for everything jepsy raises on purpose.

Every error names the thing that was wrong, the value it had and, where one
exists, a hint.  The CLI maps :class:`JepsyError` subclasses to exit code 254
(bad input or arguments) and anything else to 255 (jepsy itself crashed)."""

from __future__ import annotations

from collections.abc import Sequence


class JepsyError(Exception):
    """Root of every error jepsy raises deliberately."""


class ConfigError(JepsyError):
    """A bad argument, option or test configuration (exit code 254)."""


class HistoryError(JepsyError):
    """A history that cannot be read or is not well formed.

    ``source`` is the file (or ``"<memory>"``), ``line`` the 1-based line in
    that file where known, ``index`` the op index where known."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        index: int | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.index = index
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        if self.index is not None:
            where += f"op {self.index}: "
        return where + self.message


class ModelError(JepsyError):
    """An unknown model name or an op a model cannot interpret."""


class RemoteError(JepsyError):
    """A command on a node failed: names node, argv, exit code, stdout, stderr."""

    def __init__(
        self,
        message: str,
        *,
        node: str,
        argv: Sequence[str] = (),
        exit_code: int | None = None,
        stdout: bytes | str = b"",
        stderr: bytes | str = b"",
    ) -> None:
        self.message = message
        self.node = node
        self.argv = list(argv)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(str(self))

    def __str__(self) -> str:
        def text(b: bytes | str) -> str:
            s = b.decode("utf-8", "replace") if isinstance(b, bytes) else b
            s = s.strip()
            return s if len(s) <= 2000 else s[:1000] + " ... " + s[-1000:]

        parts = [f"{self.node}: {self.message}"]
        if self.argv:
            import shlex

            parts.append(f"command: {shlex.join(self.argv)}")
        if self.exit_code is not None:
            parts.append(f"exit code: {self.exit_code}")
        if self.stdout:
            parts.append(f"stdout: {text(self.stdout)}")
        if self.stderr:
            parts.append(f"stderr: {text(self.stderr)}")
        return "\n  ".join(parts)


class RemoteTimeout(RemoteError):
    """A command on a node did not finish within its timeout."""


class SetupError(JepsyError):
    """A cluster, node or database could not be brought up (missing binary, no root ...)."""


class ClientError(JepsyError):
    """Raised by a client for an error it *knows* had no effect (recorded as ``fail``).

    Any other exception from ``Client.invoke`` is recorded as ``info``."""

    def __init__(self, message: str, *, definite: bool = True) -> None:
        self.definite = definite
        super().__init__(message)


class CheckerTimeout(JepsyError):
    """A checker ran out of its time or memory budget (turned into ``unknown``)."""
