"""`entra-bulk apply FILE` and `entra-bulk apply --resume RUN_DIR`."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from runner import approval, frozen, progress, report, summary
from runner.cli import Console
from runner.commands._options import tenant_settings, trace_hook
from runner.commands._rundir import open_run
from runner.engine.apply import ApplyOptions, ApplyResult, DriftAbortError, Run
from runner.engine.pacer import Pacer, PacingEvent
from runner.engine.reader import Reader
from runner.errors import ExitCode, InputError, RefusedError, RunnerError
from runner.events import EventLog
from runner.graph.connect import Connection, connect
from runner.journal import Journal
from runner.planner import app_directory_roles, identify, refresher
from runner.preflight import check, role_problem
from runner.rundir import RUNS_DIR, create_run_dir, creating_run, earlier_runs
from runner.runstate import OPEN_STATUSES, ItemStatus, RunHeader, specs_from_plan
from runner.secretfile import SecretsFile

CONFIRM_THRESHOLD = 50


class _Stop:
    """SIGINT/SIGTERM: the first asks the run to stop taking work; the second is Ctrl-C."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextmanager
def _signals(stop: _Stop) -> Iterator[None]:
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _acting_targets(plan: frozen.FrozenPlan) -> int:
    return sum(
        1
        for target in plan.targets()
        if not target.refused and any(c.kind in {"change", "noop"} for c in target.changes)
    )


def _confirm(console: Console, plan: frozen.FrozenPlan, *, yes: bool, count: int | None) -> None:
    acting = _acting_targets(plan)
    tenant = plan.tenant_id
    if acting > CONFIRM_THRESHOLD and count != acting:
        given = "no --confirm-count" if count is None else f"--confirm-count {count}"
        msg = (
            f"the plan acts on {acting} users, more than {CONFIRM_THRESHOLD}: confirm with "
            f"--confirm-count {acting} ({given} was given)"
        )
        raise RefusedError(msg, hint="the number must equal the plan's count of users")
    if count is not None and count != acting:
        # A count given is checked whatever the plan's size: a scheduled job's stale count
        # means it is not applying the plan it thinks it is.
        msg = f"--confirm-count {count} was given, but the plan acts on {acting} users"
        raise RefusedError(msg, hint="the number must equal the plan's count of users")
    if yes:
        return
    if not console.is_terminal:
        msg = "apply needs --yes when no one is at a terminal to confirm"
        raise InputError(msg)
    answer = click.prompt(
        f"Apply {plan.name!r} to {acting} users in tenant {tenant}? Type yes to go on",
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip().lower() != "yes":
        msg = "not confirmed; nothing was sent"
        raise RefusedError(msg)


def _refuse_earlier_run(root: Path, plan: frozen.FrozenPlan) -> None:
    """A plan is applied once per runs folder: refuse (exit 3) when a run of this digest is
    going on, or exists at all, naming it and the way forward (`--resume`, or a new plan)."""
    runs = earlier_runs(root, plan.name, plan.digest)
    if not runs:
        return
    run = runs[-1]
    what = f"plan {plan.name!r} ({plan.digest})"
    resume = f"entra-bulk apply --resume {shlex.quote(str(run.path))}"
    if run.lock is not None and run.lock_alive is not False:
        msg = (
            f"{what} is being applied in {run.path}: the run is locked by "
            f"{run.lock.describe()}, running {run.lock.command!r}"
        )
        hint = f"wait for it to finish; if it stops before the end, `{resume}` continues it"
        raise RefusedError(msg, hint=hint)
    still_open = sum(run.counts.get(status, 0) for status in OPEN_STATUSES)
    if still_open or run.lock is not None:
        msg = f"{what} was already applied in {run.path}, and that run did not finish"
        hint = f"`{resume}` continues it: it reads back what is unknown and repeats nothing"
        raise RefusedError(msg, hint=hint)
    msg = f"{what} was already applied in {run.path}"
    hint = (
        f"a plan is applied once (`entra-bulk status {run.path}` shows how it ended); to act "
        "on these users again, plan again and approve the new plan"
    )
    raise RefusedError(msg, hint=hint)


def _header(
    plan: frozen.FrozenPlan, approvals: tuple[approval.Approval, ...], options: ApplyOptions
) -> RunHeader:
    content = plan.content
    return RunHeader(
        plan_name=plan.name,
        ticket=content["plan"].get("ticket"),
        digest=plan.digest,
        tenant_id=plan.tenant_id,
        emulated=bool(content["tenant"].get("emulated")),
        author=dict(content["author"]),
        approvals=tuple(a.as_json() for a in approvals),
        content=content,
        options={
            "canary": options.canary,
            "halt_on_failure_rate": options.halt_on_failure_rate,
            "on_drift": options.on_drift,
            "applied_by": getpass.getuser(),
        },
        created=dt.datetime.now(dt.UTC),
        tool_version=str(plan.info.get("tool_version", "")),
    )


def _pacing_listener(events: EventLog, journal: Journal) -> Any:
    """Pacing events go to events.jsonl and, as they happen, to the journal's timeline."""

    def listen(event: PacingEvent) -> None:
        events.emit(
            "pacing",
            kind=event.kind,
            seconds=round(event.seconds, 3),
            factor=event.factor,
            detail=event.detail,
        )
        journal.record_event(
            event.kind,
            {"seconds": round(event.seconds, 3), "factor": event.factor, "detail": event.detail},
        )

    return listen


def _progress(console: Console) -> Any:
    # `_execute` has just set console.crash_dir to the run folder: its journal gives the counts.
    return progress.for_apply(console, console.crash_dir)


def _summary(console: Console, result: ApplyResult, run_dir: Path) -> None:
    progress.finish(console)
    figures = summary.RunFigures(
        requests=result.requests,
        throttled=result.throttled,
        paused_s=result.paused_s,
        reconciled=result.reconciled,
    )
    summary.show(console, run_dir, figures)


def _exit_code(result: ApplyResult) -> int:
    if result.interrupted:
        return int(ExitCode.INTERRUPTED)
    if result.drift_abort:
        return int(ExitCode.REFUSED)
    if result.halted:
        return int(ExitCode.HALTED)
    counts = result.counts
    bad = sum(
        counts.get(str(s), 0)
        for s in (ItemStatus.FAILED, ItemStatus.UNKNOWN, ItemStatus.PLANNED, ItemStatus.INTENT)
    )
    if bad or result.unverified:
        return int(ExitCode.FINISHED_WITH_FAILURES)
    return int(ExitCode.SUCCESS)


@contextlib.contextmanager
def _holding(journal: Journal) -> Iterator[None]:
    """While this process holds the run's lock: whatever stops it (sign-in failing before the
    run starts, a refusal, a storage error while the reports are written) is journaled as the
    run's end and the lock is let go, so `status` does not take it for a killed process."""
    try:
        yield
    except BaseException as exc:
        if journal.lock is not None:
            with contextlib.suppress(Exception):
                journal.record_event(
                    "run_ended", {"exit": _exit_of(exc), "error": type(exc).__name__}
                )
            with contextlib.suppress(Exception):
                journal.release_lock()
        raise


def _exit_of(exc: BaseException) -> int:
    """The exit code the error boundary gives `exc` (product-spec section 2)."""
    if isinstance(exc, RunnerError):
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED)
    if isinstance(exc, SystemExit) and isinstance(exc.code, int):
        return exc.code
    return int(ExitCode.INTERNAL)


def _claims_refresher(connection: Connection) -> Any:
    """A fresh token carrying the claims of a claims challenge (msal's `claims_challenge`)."""

    def refresh(claims: str) -> None:
        connection.tokens.access_token(refresh=True, claims=claims)

    return refresh


def _execute(
    console: Console,
    connection: Connection,
    journal: Journal,
    run_dir: Path,
    options: ApplyOptions,
    *,
    delegated: bool,
) -> int:
    console.crash_dir = run_dir
    stop = _Stop()
    events = EventLog(run_dir / "events.jsonl", listeners=(_progress(console),))
    pacer = Pacer(connection.settings.limits, on_event=_pacing_listener(events, journal))
    secrets = SecretsFile(run_dir)
    result: ApplyResult | None = None
    try:
        with _signals(stop):
            run = Run(
                journal=journal,
                client=connection.client,
                pacer=pacer,
                secrets=secrets,
                events=events,
                refresh_token=refresher(connection.tokens),
                refresh_claims=_claims_refresher(connection),
                delegated=delegated,
                options=options,
                stop=stop,
            )
            try:
                result = run.run()
            except DriftAbortError:
                result = run.result
                result.counts = {str(k): v for k, v in journal.counts().items()}
    except BaseException as exc:
        progress.finish(console)
        # Stopping for a token that needs a person, a second Ctrl-C, a storage error or a
        # bug: the journal already holds the truth; leave reports and the lock in order if
        # we can, and let the error boundary say what happened.
        with contextlib.suppress(Exception):
            journal.record_event("run_ended", {"exit": _exit_of(exc), "error": type(exc).__name__})
        with contextlib.suppress(Exception):
            report.write_all(run_dir, journal)
        with contextlib.suppress(Exception):
            journal.release_lock()
        raise
    finally:
        secrets.close()
        events.close()
    code = _exit_code(result)
    # How this process ended, for `status` and the reports (a killed one records nothing).
    journal.record_event("run_ended", {"exit": code})
    report.write_all(run_dir, journal)
    journal.release_lock()
    _summary(console, result, run_dir)
    if result.drift_abort:
        console.error(f"aborted on drift: {result.drift_abort}; re-plan")
    if result.halted:
        console.error(
            f"halted: {result.halted}; resume with entra-bulk apply --resume "
            + shlex.quote(str(run_dir))
        )
    if result.interrupted:
        console.error(
            "interrupted; resume with entra-bulk apply --resume " + shlex.quote(str(run_dir))
        )
    return code


@click.command(name="apply")
@click.argument(
    "plan_file", metavar="FILE", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue an interrupted run from its folder.",
)
@click.option("--expect-digest", metavar="SHA256", help="Refuse unless the plan's digest is this.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (every rail still applies).")
@click.option(
    "--confirm-count",
    type=int,
    metavar="N",
    help=f"The number of users: required above {CONFIRM_THRESHOLD}, checked whenever given.",
)
@click.option(
    "--on-drift",
    type=click.Choice(["skip", "abort"]),
    default="skip",
    show_default=True,
    help="A target that changed since planning: skip it, or stop the run (exit 3).",
)
@click.option("--no-canary", is_flag=True, help="Do not run the first targets alone first.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Where the run folder goes [default: ./{RUNS_DIR}/<time>-<plan name>].",
)
@click.option(
    "--force-unlock", metavar="LOCK_ID", help="With --resume: clear a lock held on another host."
)
@click.option(
    "--trace-http", is_flag=True, help="Log each Graph request (method, path, status, ids, time)."
)
@click.pass_context
def command(
    ctx: click.Context,
    plan_file: Path | None,
    resume_dir: Path | None,
    expect_digest: str | None,
    yes: bool,
    confirm_count: int | None,
    on_drift: str,
    no_canary: bool,
    run_dir: Path | None,
    force_unlock: str | None,
    trace_http: bool,
) -> int:
    """Execute a frozen, approved plan: batched, paced, journaled, verified."""
    console: Console = ctx.obj
    if (plan_file is None) == (resume_dir is None):
        msg = "give a frozen plan FILE, or --resume RUN_DIR (not both)"
        raise InputError(msg)
    if force_unlock and resume_dir is None:
        msg = "--force-unlock goes with --resume RUN_DIR"
        raise InputError(msg)
    trace = trace_hook(console) if trace_http else None
    if resume_dir is not None:
        return _resume(console, resume_dir, force_unlock=force_unlock, trace=trace)
    assert plan_file is not None
    plan = frozen.read(plan_file)
    tenant = plan.content.get("tenant")
    settings = tenant_settings(
        console,
        for_tenant=plan.tenant_id,
        emulated=isinstance(tenant, dict) and tenant.get("emulated") is True,
    )
    approvals = approval.load(plan_file)
    safety = plan.safety
    options = ApplyOptions(
        on_drift=on_drift,
        canary=0 if no_canary else int(safety.get("canary", 10)),
        halt_on_failure_rate=float(safety.get("halt_on_failure_rate", 0.05)),
    )
    root = run_dir or Path(RUNS_DIR)
    _refuse_earlier_run(root, plan)
    with connect(
        settings, prompt=console.info, interactive=console.is_terminal, trace=trace
    ) as connection:
        caller = identify(connection.tokens, connection.settings)
        verdict = approval.check(
            plan,
            approvals,
            expect_digest=expect_digest,
            now=dt.datetime.now(dt.UTC),
            tenant_id=caller.tenant_id or connection.settings.tenant_id,
            verify_signature=approval.verifier(plan),
        )
        approval.enforce(verdict, plan=plan)
        actions = sorted(
            {c.action for t in plan.targets() for c in t.changes if c.kind in {"change", "noop"}}
        )
        check(caller, actions, groups=False)
        if not caller.delegated:
            reader = Reader(connection.client, Pacer(connection.settings.limits))
            refused, warning = role_problem(app_directory_roles(reader, caller), actions)
            if refused:
                raise RefusedError(refused, hint="assign the role to the app's service principal")
            if warning:
                console.warn(warning)
        _confirm(console, plan, yes=yes, count=confirm_count)
        counted = tuple(a.approval for a in verdict.approvals if a.counts)
        with creating_run(root):
            # Checked again under the runs folder's lock: of two `apply` of this plan started
            # at once, the second finds the first's run here (F26).
            _refuse_earlier_run(root, plan)
            folder = create_run_dir(root, plan.name, now=dt.datetime.now(dt.UTC))
            journal = Journal.create(folder, _header(plan, counted, options), specs_from_plan(plan))
            journal.acquire_lock(command="apply")
        console.info(f"Applying {plan.name!r} ({plan.digest}) in {folder}")
        # The run reads its plan from the journal: the parsed file (about 200 MB for 100,000
        # targets) is not kept for the length of the run.
        del plan
        with _holding(journal):
            return _execute(
                console, connection, journal, folder, options, delegated=caller.delegated
            )


def _resume(
    console: Console,
    folder: Path,
    *,
    force_unlock: str | None,
    trace: Any,
) -> int:
    journal = open_run(folder)
    known = journal.header()
    try:
        settings = tenant_settings(console, for_tenant=known.tenant_id, emulated=known.emulated)
    except BaseException:
        journal.close()
        raise
    if force_unlock:
        holder = journal.force_unlock(force_unlock)
        console.warn(f"cleared the lock of {holder.describe()}")
    old = journal.take_over_if_dead(command="apply --resume")
    if old is not None:
        console.warn(f"took over the lock of {old.describe()}: that process is no longer running")
    header = journal.header()
    options = ApplyOptions(
        on_drift=str(header.options.get("on_drift", "skip")),
        canary=int(header.options.get("canary", 10)),
        halt_on_failure_rate=float(header.options.get("halt_on_failure_rate", 0.05)),
    )
    with (
        _holding(journal),
        connect(
            settings, prompt=console.info, interactive=console.is_terminal, trace=trace
        ) as connection,
    ):
        caller = identify(connection.tokens, connection.settings)
        if caller.tenant_id and caller.tenant_id != header.tenant_id:
            msg = (
                f"the run is for tenant {header.tenant_id}, but the token is for {caller.tenant_id}"
            )
            raise RefusedError(msg)
        console.info(f"Resuming {header.plan_name!r} in {folder}")
        return _execute(console, connection, journal, folder, options, delegated=caller.delegated)
