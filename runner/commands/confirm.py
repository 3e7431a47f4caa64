"""`entra-bulk confirm RUN_DIR ITEM... [--by NAME] [--note TEXT]`: record manual steps done.

Graph has no API for some actions (app passwords): they are `manual` items, listed with their
portal steps in the run's `manual-steps.md`. Once an operator has done them, this moves them
to `confirmed` in the journal (under the run lock, so never while a run holds the folder) and
rebuilds the reports. All or nothing: one item that is not a manual step refuses them all.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from runner import report
from runner.cli import Console
from runner.commands._rundir import open_run
from runner.errors import ExitCode, InputError
from runner.runstate import Item, ItemStatus


def item_numbers(values: tuple[str, ...]) -> list[int]:
    """`4 8 12` or `4,8,12` → [4, 8, 12], in order, without repeats."""
    numbers: list[int] = []
    for value in values:
        for part in value.split(","):
            text = part.strip()
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                msg = f"ITEM {text!r} is not an item number (manual-steps.md lists them)"
                raise InputError(msg)
            if int(text) not in numbers:
                numbers.append(int(text))
    if not numbers:
        msg = "give the numbers of the items to confirm (manual-steps.md lists them)"
        raise InputError(msg)
    return numbers


def _describe(item: Item) -> str:
    return f"item {item.id} ({item.upn}, {item.action})"


@click.command(name="confirm")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.argument("items", metavar="ITEM...", nargs=-1, required=True)
@click.option("--by", metavar="NAME", help="Who did the steps [default: your user name].")
@click.option("--note", metavar="TEXT", help="What was done; kept with the confirmation.")
@click.pass_context
def command(
    ctx: click.Context, run_dir: Path, items: tuple[str, ...], by: str | None, note: str | None
) -> int:
    """Record that an operator did the manual steps of ITEMs (see the run's manual-steps.md)."""
    console: Console = ctx.obj
    numbers = item_numbers(items)
    who = (by or getpass.getuser()).strip()
    if not who:
        msg = "--by must name who did the steps"
        raise InputError(msg)
    with open_run(run_dir) as journal:
        journal.acquire_lock(command="confirm")
        found: list[Item] = []
        for number in numbers:
            try:
                found.append(journal.item(number))
            except LookupError:
                msg = f"{run_dir}: no item {number} in this run; nothing was recorded"
                raise InputError(msg, hint="manual-steps.md lists the manual items") from None
        wrong = [i for i in found if i.status not in {ItemStatus.MANUAL, ItemStatus.CONFIRMED}]
        if wrong:
            listed = "; ".join(f"{_describe(i)} is {i.status}" for i in wrong)
            msg = f"only manual steps can be confirmed: {listed}; nothing was recorded"
            raise InputError(msg, hint="manual-steps.md lists the manual items")
        for item in found:
            if item.status is ItemStatus.CONFIRMED:
                earlier = item.detail.get("by", "someone")
                console.warn(f"{_describe(item)} was already confirmed by {earlier}")
        todo = [i for i in found if i.status is ItemStatus.MANUAL]
        journal.confirm([i.id for i in todo], by=who, note=note or "")
        for item in todo:
            console.out(f"confirmed {_describe(item)} by {who}")
        open_left = sum(1 for _ in journal.iter_items(status=ItemStatus.MANUAL))
        formats = [*report.DEFAULT_FORMATS]
        if (run_dir / "report.xlsx").exists():
            formats.append("xlsx")
        report.write_all(run_dir, journal, formats=formats)
    console.info(f"{open_left} manual steps still open; reports rebuilt in {run_dir}")
    return int(ExitCode.SUCCESS)
