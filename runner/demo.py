"""`entra-bulk demo`: the whole flow, narrated, against an emulated tenant made for it.

An emulated Entra tenant starts in a temporary folder (in this process, on loopback); an
example plan from `plans/` is copied into the demo folder (`./entra-bulk-demo` by default)
and taken through validate → plan → approve → apply → report → status by the real commands,
each shown as the line a user would type. The tenant goes away at the end; the demo folder
with the frozen plan and the run folder stays, and the last line printed is the path of the
run's `report.html`.

The commands are run through `invoke` (the CLI, given by `runner/commands/demo.py`), so this
module needs no click; the emulator is reached by the commands exactly as any other tenant.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner.config import EMULATOR_ENV
from runner.emulator import Emulator, EmulatorConfig
from runner.errors import ExitCode, StorageError
from runner.frozen import read as read_plan
from runner.resources import data_dir

DEMO_DIR = Path("entra-bulk-demo")
DEFAULT_EXAMPLE = "breach-containment"
REVIEWER = "demo-reviewer"
REVIEW_COMMENT = "recorded by entra-bulk demo, standing in for a second reviewer"
USERS = 60
SEED = 1
WHERE_TO_LOOK = (
    ("report.html", "the run at a glance: outcome, counts, charts, the sortable table"),
    ("report.csv", "one row per (user, action): status, HTTP status, error, request-id"),
    ("report.json", "the same for programs, with the plan header and timeline figures"),
    ("manual-steps.md", "what Graph cannot do (app passwords), with the confirm commands"),
    ("failed.csv", "what failed or drifted, if anything; failed.yaml plans it again"),
    ("secrets.csv", "the temporary passwords (0600), and nowhere else"),
    ("events.jsonl", "the structured log of the run"),
    ("journal.sqlite", "the journal every report is rebuilt from"),
)

STEPS = 6
Invoke = Callable[[Sequence[str]], int]
Say = Callable[[str], None]
Step = tuple[str, list[list[str]]]  # why, and the command lines that do it


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """How the demo ended: an exit code, and the run folder when apply made one."""

    code: int
    run_dir: Path | None


def examples() -> list[str]:
    """The example plans that ship with entra-bulk (YAML files in `plans/`)."""
    return sorted(path.stem for path in data_dir("plans").glob("*.yaml"))


def shown(path: Path) -> str:
    """`path` relative to the working folder when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def prepare(folder: Path, example: str) -> Path:
    """Copy the example plan (and the CSV it takes targets from) into `folder`; clear the
    frozen plan and approvals an earlier demo left there. Returns the copy."""
    source = data_dir("plans") / f"{example}.yaml"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / source.name
        shutil.copyfile(source, target)
        extra = yaml.safe_load(source.read_text(encoding="utf-8")).get("targets_from")
        if extra:
            shutil.copyfile(source.parent / str(extra), folder / str(extra))
        for old in (f"{example}.plan.json", f"{example}.plan.json.approvals.json"):
            (folder / old).unlink(missing_ok=True)
    except OSError as exc:
        msg = f"{folder}: cannot set up the demo folder: {exc.strerror or exc}"
        raise StorageError(msg, hint="run the demo where you can write, or pass --dir") from None
    return target


@contextlib.contextmanager
def _connected_to(connection_file: Path) -> Iterator[None]:
    """`--tenant emulator` means this emulator while the demo runs."""
    before = os.environ.get(EMULATOR_ENV)
    os.environ[EMULATOR_ENV] = str(connection_file)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(EMULATOR_ENV, None)
        else:
            os.environ[EMULATOR_ENV] = before


def _runs(root: Path) -> set[Path]:
    return set(root.iterdir()) if root.is_dir() else set()


def run(*, folder: Path, example: str, invoke: Invoke, say: Say) -> Result:
    """The demo: narrate and run each step; stop at the first that fails."""
    plan = prepare(folder, example)
    frozen = folder / f"{example}.plan.json"
    runs_root = folder / "runs"
    before = _runs(runs_root)
    p, f = shown(plan), shown(frozen)
    say("entra-bulk demo: the whole flow against an emulated Entra tenant")
    say(f"  tenant  a new emulated tenant ({USERS} users, seed {SEED}) in a temporary folder,")
    say("          served on 127.0.0.1 by this process: nothing here reaches a real tenant")
    say(f"  plan    {p} (a copy of the example {example!r}: edit it and try again)")
    early: list[Step] = [
        ("check the plan offline: schema, UPNs, order of actions (no network)", [["validate", p]]),
        (
            "dry-run it against the tenant: resolve the users, read their state, apply the "
            "safety rails, print the diff and freeze it, with its digest, for review",
            [["--tenant", "emulator", "plan", p, "-o", f]],
        ),
    ]
    with (
        tempfile.TemporaryDirectory(prefix="entra-bulk-demo-") as state,
        Emulator(EmulatorConfig(state_dir=Path(state), users=USERS, seed=SEED)) as emu,
        _connected_to(emu.connection_file),
    ):
        code = _steps(early, invoke, say)
        if code == 0:
            names = reviewers(int(read_plan(frozen).safety.get("required_approvals") or 1))
            who = ", ".join(repr(name) for name in names)
            stand_in = "a colleague" if len(names) == 1 else "colleagues"
            late: list[Step] = [
                (
                    f"approve exactly this plan, bound to its digest (here as {who}, standing "
                    f"in for {stand_in}; the author may not approve their own plan)",
                    [["approve", f, "--approver", n, "--comment", REVIEW_COMMENT] for n in names],
                ),
                (
                    "apply it: canary first, then batches paced under Graph's limits, every "
                    "request journaled before it is sent, every change read back and verified",
                    [["--tenant", "emulator", "apply", f, "--yes", "--run-dir", shown(runs_root)]],
                ),
            ]
            code = _steps(late, invoke, say, first=len(early) + 1)
    made = sorted(_runs(runs_root) - before)
    run_dir = made[-1] if made else None
    # apply's exit 1 (finished with failures) still made a run worth reporting on.
    if code not in {0, int(ExitCode.FINISHED_WITH_FAILURES)} or run_dir is None:
        say(f"\nThe demo stopped (exit {code}); the messages above say why.")
        return Result(code=code or 1, run_dir=run_dir)
    r = shown(run_dir)
    after: list[Step] = [
        ("rebuild the reports from the run's journal, as you can any time", [["report", r]]),
        ("see how the run stands: counts, lock, outcome, last events", [["status", r]]),
    ]
    code = _steps(after, invoke, say, first=5) or code
    say(f"\nWhere to look, in {r}:")
    for name, what in WHERE_TO_LOOK:
        if (run_dir / name).exists():
            say(f"  {name:<16} {what}")
    say(
        "\nThe emulated tenant is gone; the plan and the run stay in "
        f"{shown(folder)}. On your own tenant the same commands take --tenant PROFILE "
        "(README: 'Connecting a real tenant')."
    )
    say("Open the report in a browser:")
    say(str((run_dir / "report.html").resolve()))
    return Result(code=code, run_dir=run_dir)


def reviewers(required: int) -> list[str]:
    """The stand-in approvers: as many as the plan requires (each counts once)."""
    if required <= 1:
        return [REVIEWER]
    return [f"{REVIEWER}-{number}" for number in range(1, required + 1)]


def _steps(steps: Sequence[Step], invoke: Invoke, say: Say, *, first: int = 1) -> int:
    for number, (why, commands) in enumerate(steps, start=first):
        say(f"\nStep {number} of {STEPS}: {why}")
        for argv in commands:
            say("$ " + " ".join(_quoted(argv)))
            code = invoke(argv)
            if code != 0:
                return code
    return 0


def _quoted(argv: Sequence[str]) -> list[str]:
    return ["entra-bulk", *(shlex.quote(arg) for arg in argv)]
