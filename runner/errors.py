"""The error tree and the exit codes of product-spec section 2.

Core code raises `RunnerError` subclasses; only the CLI's error boundary turns them into
a message on stderr and an exit code. Nothing here prints or exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `entra-bulk` (product-spec section 2)."""

    SUCCESS = 0
    FINISHED_WITH_FAILURES = 1
    INVALID_INPUT = 2
    REFUSED = 3
    HALTED = 4
    AUTH = 5
    STORAGE = 6
    INTERNAL = 70
    INTERRUPTED = 130


class RunnerError(Exception):
    """An expected failure: the message is for the operator, the exit code for scripts."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(RunnerError):
    """Invalid input or usage (plan file, options): nothing was done."""

    exit_code = ExitCode.INVALID_INPUT


class RefusedError(RunnerError):
    """A safety rail or a plan that is stale, expired, unapproved, tampered with or foreign."""

    exit_code = ExitCode.REFUSED


class HaltedError(RunnerError):
    """The failure-rate threshold, the canary or the retry budget stopped the run."""

    exit_code = ExitCode.HALTED


class AuthError(RunnerError):
    """Authentication or permission failure."""

    exit_code = ExitCode.AUTH


class StorageError(RunnerError):
    """Local storage failed (journal, run folder, secrets file)."""

    exit_code = ExitCode.STORAGE


class ConfigError(InputError):
    """A profile, a configuration file or an environment variable is wrong."""
