"""The one error hierarchy of datastage and the exit codes it maps to.

Every error names what it is about (file, line, key path, table, step) and renders
as a single line, so a cron mail or a CI log shows the cause without a traceback. The
rendered text never holds a known secret (see :mod:`datastage.secrets`): an error is
redacted when it is rendered, whatever its message was built from.

Example:
    >>> str(ConfigError("unknown environment 'stagin'", file="datastage.yaml", key="environments"))
    "datastage.yaml: environments: unknown environment 'stagin'"
"""

from __future__ import annotations

from typing import Any, Self

from datastage.secrets import redact, redact_data

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_VERIFY = 3
EXIT_LOCKED = 4
EXIT_LIVE_INCOMPLETE = 5  # the new copy is live, but its report or history line could not be completed
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
EXIT_TERMINATED = 143  # SIGTERM (Kubernetes, systemd, a scheduler's stop): 128 + 15


class DatastageError(Exception):
    """Base of every error datastage raises on purpose; carries its exit code."""

    exit_code: int = EXIT_RUNTIME

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        table: str | None = None,
        step: str | None = None,
    ) -> None:
        message = redact(message)  # and again when rendered: a secret may be registered in between
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.table = table
        self.step = step

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        prefix = f"{self.step} failed: " if self.step else ""
        key = f"{self.key}: " if self.key else ""
        table = f"table {self.table}: " if self.table and self.table not in self.message else ""
        text = f"{where}{prefix}{key}{table}{self.message}"
        return " ".join(redact(text).split())  # never a secret, always one line

    def to_dict(self) -> dict[str, object]:
        """Machine-readable form for ``--json`` output."""
        data: dict[str, object] = redact_data({
            "error": type(self).__name__,
            "message": str(self),
            "exit_code": self.exit_code,
            **{k: v for k, v in self._context().items() if v is not None},
        })
        return data

    def _context(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "key": self.key, "table": self.table, "step": self.step}


class UsageError(DatastageError):
    """Wrong command-line usage (unknown environment, conflicting options)."""

    exit_code = EXIT_USAGE


class ConfigError(DatastageError):
    """datastage.yaml is missing, malformed or names something that does not exist."""

    exit_code = EXIT_USAGE


class RulesError(ConfigError):
    """A rules (policy) file is malformed or does not fit the source schema."""


class SafetyError(DatastageError):
    """A refresh would write to the source or to a protected environment."""

    exit_code = EXIT_USAGE


class MaskingKeyError(ConfigError):
    """The masking key is missing or unreadable."""


class WeakMaskingKeyError(MaskingKeyError):
    """The masking key holds too few bytes of secret for a new project."""


class SigningKeyError(ConfigError):
    """The report-signing key is unreadable, not an Ed25519 key, or readable by others."""


class EmptyMaskingKeyError(MaskingKeyError):
    """``$DATASTAGE_MASKING_KEY`` is set but empty: an error even where a missing key is not."""


class SourceError(DatastageError):
    """The source database cannot be reached or read."""


class TargetError(DatastageError):
    """The target database cannot be reached or written."""


class StepError(DatastageError):
    """A pipeline step failed at run time; the target was left as it was."""


class HookFailed(StepError):
    """A hook that is not ``warn_only`` failed or timed out; ``results`` holds the hooks run so far
    (:class:`datastage.ops.hooks.HookResult` objects: this module imports nothing above it)."""

    results: list[Any]


class VerificationFailed(DatastageError):
    """A post-load check failed; the shadow copy was discarded."""

    exit_code = EXIT_VERIFY


class ArtifactInvalid(VerificationFailed):
    """An artifact folder failed its checks (signature, hashes, listed files); nothing was restored."""


class LockHeld(DatastageError):
    """Another refresh of the same target is running."""

    exit_code = EXIT_LOCKED


class LockLost(TargetError):
    """The refresh lock ended before the swap (its session was terminated, its lock file removed);
    the run gave up and left the target unchanged."""


class LiveIncomplete(DatastageError):
    """The new copy went live, but its report or history line could not be completed.

    The pending report written before the swap stays; the next command of the environment
    completes it from the target's refresh log.
    """

    exit_code = EXIT_LIVE_INCOMPLETE


class StopSignal:
    """Mixin of the exceptions a stop signal raises: which signal, and the one line to print."""

    signal_name: str = "SIGINT"
    exit_code: int = EXIT_INTERRUPTED
    message: str = "interrupted"

    def describe(self, message: str) -> Self:
        """The same stop with the line that says how the run ended."""
        self.message = " ".join(message.split())
        return self

    def __str__(self) -> str:
        return self.message


class Interrupted(StopSignal, KeyboardInterrupt):
    """SIGINT (Ctrl-C) stopped the run: exit code 130."""

    signal_name = "SIGINT"
    exit_code = EXIT_INTERRUPTED
    message = "interrupted by SIGINT"


class Terminated(StopSignal, SystemExit):
    """SIGTERM stopped the run: exit code 143. A :class:`SystemExit`, so a program that does not
    catch it ends with exit code 143, as a process stopped by SIGTERM does."""

    signal_name = "SIGTERM"
    exit_code = EXIT_TERMINATED
    message = "stopped by SIGTERM"

    def __init__(self, *args: object) -> None:
        super().__init__(EXIT_TERMINATED)


def stop_signal(error: BaseException) -> Interrupted | Terminated:
    """The stop exception for ``error`` (a plain KeyboardInterrupt becomes :class:`Interrupted`)."""
    return error if isinstance(error, Interrupted | Terminated) else Interrupted()


def exit_code_for(error: BaseException) -> int:
    """Exit code for any exception: ours carry one, anything else is a runtime failure.

    >>> exit_code_for(ConfigError("x"))
    2
    >>> exit_code_for(ValueError("x"))
    1
    """
    if isinstance(error, DatastageError | StopSignal):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_RUNTIME
