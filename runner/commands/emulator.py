"""`entra-bulk emulator serve`: run the emulated Entra tenant in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from runner.cli import Console, pass_console
from runner.config import user_data_dir
from runner.emulator import CONNECTION_FILE, Emulator, EmulatorStateError
from runner.emulator.config import DEFAULT_SEED, DEFAULT_USERS, EmulatorConfig, Latency
from runner.emulator.faults import FaultRuleError
from runner.errors import ExitCode, InputError


def default_state_dir() -> Path:
    """The persistent local tenant, shared with `--tenant emulator`."""
    return user_data_dir() / "emulator"


def _latency(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Latency:
    if value is None:
        return Latency()
    try:
        return Latency.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(name="emulator")
def command() -> None:
    """The emulated Entra tenant: a Graph-speaking server on loopback for tries and tests."""


@command.command(name="serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the Graph host (0 picks a free one).",
)
@click.option(
    "--users",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_USERS,
    show_default=True,
    help="Users in a newly generated tenant.",
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULT_SEED,
    show_default=True,
    help="Seed of a newly generated tenant (same seed, same tenant).",
)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the tenant's state and of emulator.json "
    "[default: the user's data folder, shared with --tenant emulator].",
)
@click.option("--reset", is_flag=True, help="Regenerate the tenant in --state from the seed.")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
    help="Speed up throttling windows and Retry-After by this factor.",
)
@click.option(
    "--latency-ms",
    "latency",
    metavar="LO:HI",
    callback=_latency,
    default=None,
    help="Added latency per Graph request, uniform in milliseconds.",
)
@click.option(
    "--throttle",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Enforce Graph's published throttling quotas.",
)
@click.option(
    "--faults",
    "faults_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="JSON file of fault-injection rules.",
)
@click.option(
    "--consistency-delay",
    type=click.FloatRange(min=0),
    default=1.5,
    show_default=True,
    help="Seconds before deletions and revocations show in reads.",
)
@pass_console
def serve(
    console: Console,
    port: int,
    users: int,
    seed: int,
    state_dir: Path | None,
    reset: bool,
    time_scale: float,
    latency: Latency,
    throttle: str,
    faults_file: Path | None,
    consistency_delay: float,
) -> int:
    """Run the emulated tenant in the foreground until Ctrl-C; writes STATE/emulator.json."""
    config = EmulatorConfig(
        state_dir=state_dir or default_state_dir(),
        users=users,
        seed=seed,
        port=port,
        time_scale=time_scale,
        latency=latency,
        throttle=throttle == "on",
        faults_file=faults_file,
        consistency_delay_s=consistency_delay,
    )
    emulator = Emulator(config, reset=reset)
    try:
        emulator.start()
    except EmulatorStateError as exc:
        raise InputError(str(exc)) from None
    except FaultRuleError as exc:
        raise InputError(str(exc)) from None
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    connection = config.state_dir / CONNECTION_FILE
    limits = config.limits
    console.out(f"Emulated tenant {emulator.tenant_id} ({users} users, seed {seed})")
    console.out(f"  Graph:       {emulator.graph_url}  (/v1.0 and /beta)")
    console.out(f"  Authority:   {emulator.info['authority']}")
    console.out(f"  Admin API:   {emulator.admin_url}")
    console.out(
        f"  Throttling:  {'on' if config.throttle else 'off'}, {limits.tenant_size} tenant, "
        f"{limits.resource_units_per_10s} RU/10 s, {limits.writes_per_150s} writes/150 s, "
        f"time scale {time_scale:g}"
    )
    console.out(f"  Connection:  {connection}")
    console.out(f"Use it from another shell:  export ENTRA_BULK_EMULATOR={connection}")
    console.out("Press Ctrl-C to stop.")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emulator.stop()
    console.info("Emulated tenant stopped.")
    return int(ExitCode.SUCCESS)
