"""The `entra-bulk` command line: options, the one error boundary, exit codes.

The CLI is a thin adapter. Each command lives in `runner/commands/` and calls one core
function; everything it prints goes through the `Console` on the click context; every
failure crosses `error_boundary`, which separates "your input is wrong" (a short message
and exit 2-6) from "we have a bug" (one line, traceback saved to a file, exit 70).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import click

from runner import __version__
from runner.config import user_state_dir
from runner.errors import ExitCode, RunnerError
from runner.secrets import redact


@dataclass(kw_only=True)
class Console:
    """All process I/O of a command: streams, verbosity, colour, log format, crash folder."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    verbosity: int = 0
    quiet: bool = False
    color: bool = True
    log_format: str = "text"
    tenant: str | None = None
    config_path: Path | None = None
    crash_dir: Path | None = None

    @property
    def is_terminal(self) -> bool:
        """True when stdout is an interactive terminal (tables, colour, progress bars)."""
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    def command(self, *words: str) -> str:
        """`entra-bulk [--config F] [--tenant P] WORDS...`, shell-quoted: a next step to copy
        that reaches the same tenant as this command did."""
        given: list[str] = []
        if self.config_path is not None:
            given += ["--config", str(self.config_path)]
        if self.tenant is not None:
            given += ["--tenant", self.tenant]
        return shlex.join(["entra-bulk", *given, *words])

    def out(self, text: str = "") -> None:
        """Print a line of the command's result on stdout (secrets redacted)."""
        self.stdout.write(redact(text) + "\n")
        self.stdout.flush()

    def _say(self, level: str, text: str, **extra: str) -> None:
        if self.log_format == "json":
            record = {"level": level, "message": redact(text)}
            record.update({key: redact(value) for key, value in extra.items()})
            line = json.dumps(record, ensure_ascii=False)
        else:
            prefix = "" if level == "info" else f"{level}: "
            line = prefix + redact(text)
            for key, value in extra.items():
                line += f"\n{key}: {redact(value)}"
        self.stderr.write(line + "\n")
        self.stderr.flush()

    def info(self, text: str) -> None:
        """Print a progress or status line on stderr unless `-q`."""
        if not self.quiet:
            self._say("info", text)

    def warn(self, text: str) -> None:
        """Print a warning on stderr (even with `-q`)."""
        self._say("warning", text)

    def error(self, text: str, *, hint: str | None = None) -> None:
        """Print an error (and what to do about it) on stderr."""
        if hint:
            self._say("error", text, hint=hint)
        else:
            self._say("error", text)


def _save_traceback(console: Console, exc: BaseException) -> Path | None:
    folder = console.crash_dir or user_state_dir()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"crash-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(exc))
    body = (
        f"entra-bulk {__version__} internal error\n"
        f"python {sys.version.split()[0]} on {sys.platform}\n"
        f"command: {' '.join(sys.argv[1:])}\n\n{text}"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(redact(body))
    except OSError:
        return None
    return path


@contextmanager
def error_boundary(console: Console) -> Iterator[None]:
    """Turn every exception into a message and an exit code (raises SystemExit)."""
    try:
        yield
    except RunnerError as exc:
        console.error(exc.message, hint=exc.hint)
        raise SystemExit(int(exc.exit_code)) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        console.error("interrupted")
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except click.ClickException as exc:
        exc.show(file=console.stderr)
        raise SystemExit(int(ExitCode.INVALID_INPUT)) from None
    except KeyboardInterrupt:
        console.error("interrupted")
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except Exception as exc:  # noqa: BLE001 - this is the one place that catches everything
        saved = _save_traceback(console, exc)
        where = f"; traceback saved to {saved}" if saved else ""
        console.error(f"internal error ({type(exc).__name__}): this is a bug{where}")
        raise SystemExit(int(ExitCode.INTERNAL)) from None


pass_console = click.make_pass_decorator(Console)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="entra-bulk")
@click.option("--tenant", metavar="PROFILE", help="Tenant profile to use (or 'emulator').")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Profile file to read instead of ./entra-bulk.toml and the user's config folder.",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the final result.")
@click.option("--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Progress and events as text lines or JSON objects (for CI).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    tenant: str | None,
    config_path: Path | None,
    verbose: int,
    quiet: bool,
    no_color: bool,
    log_format: str,
) -> None:
    """Bulk security actions for Entra ID users: validate, plan, approve, apply, report."""
    console = ctx.find_object(Console) or Console()
    console.tenant = tenant
    console.config_path = config_path
    console.verbosity = verbose
    console.quiet = quiet
    console.color = not no_color and "NO_COLOR" not in os.environ
    console.log_format = log_format
    ctx.obj = console


def _register_commands() -> None:
    from runner.commands import register

    register(cli)


_register_commands()


def main(argv: list[str] | None = None, *, console: Console | None = None) -> NoReturn:
    """Entry point of the `entra-bulk` console script and of `python -m runner`."""
    console = console or Console()
    with error_boundary(console):
        result = cli.main(
            args=argv,
            prog_name="entra-bulk",
            standalone_mode=False,
            obj=console,
        )
    raise SystemExit(int(result) if isinstance(result, int) else int(ExitCode.SUCCESS))
