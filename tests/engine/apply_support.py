"""Helpers for apply tests: plan and apply through the real CLI against an emulated tenant."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.cli import Console, main
from runner.emulator import Emulator


@dataclass
class Ran:
    """What a command did."""

    code: int
    out: str
    err: str


@dataclass
class Tenant:
    """An emulated tenant with the CLI pointed at it, working in a temporary folder."""

    emulator: Emulator
    folder: Path
    admin: httpx.Client

    def cli(self, *args: str) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        try:
            main(list(args), console=Console(stdout=out, stderr=err))
        except SystemExit as exc:
            code = int(exc.code or 0)
        return Ran(code=code, out=out.getvalue(), err=err.getvalue())

    def plan(self, text: str, name: str = "plan") -> Path:
        source = self.folder / f"{name}.yaml"
        source.write_text(text)
        target = self.folder / f"{name}.plan.json"
        ran = self.cli("--tenant", "emulator", "plan", str(source), "-o", str(target))
        assert ran.code == 0, ran.err
        return target

    def apply(self, plan: Path, *args: str) -> Ran:
        return self.cli("--tenant", "emulator", "apply", str(plan), "--yes", *args)

    def run_dir(self) -> Path:
        (folder,) = sorted((self.folder / "runs").iterdir())
        return folder

    def report(self, run_dir: Path | None = None) -> list[dict[str, str]]:
        path = (run_dir or self.run_dir()) / "report.csv"
        return list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.admin.get("/ledger").json()["value"])

    def effects(self) -> Counter[tuple[str, str]]:
        return Counter((row["user_id"], row["effect"]) for row in self.ledger())

    def fault(self, **rule: Any) -> None:
        response = self.admin.post("/faults", json=rule)
        assert response.status_code == 201, response.text

    def user_id(self, upn: str) -> str:
        assert self.emulator.store is not None
        user = self.emulator.store.user(upn)
        assert user is not None
        return str(user["id"])


def tenant_for(emulator: Emulator, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    """Point the CLI at `emulator` (ENTRA_BULK_EMULATOR) and work in `folder`."""
    monkeypatch.setenv("ENTRA_BULK_EMULATOR", str(emulator.connection_file))
    monkeypatch.setenv("XDG_STATE_HOME", str(folder / "state"))
    monkeypatch.chdir(folder)
    return Tenant(emulator=emulator, folder=folder, admin=httpx.Client(base_url=emulator.admin_url))


def acting_targets(plan: Path) -> int:
    """The users a frozen plan acts on (not refused)."""
    summary = json.loads(plan.read_text())["content"]["summary"]
    return int(summary["targets"]) - int(summary["refused_targets"])


def statuses(rows: list[dict[str, str]]) -> Counter[str]:
    """Report rows per status."""
    return Counter(row["status"] for row in rows)


def all_text(folder: Path) -> str:
    """Every file under a folder, as text (secret canaries are searched in it)."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "secrets.csv":
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def secrets_of(run_dir: Path) -> list[dict[str, str]]:
    """The rows of a run's secrets.csv."""
    text = (run_dir / "secrets.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def dump(value: Any) -> str:
    """JSON text of anything (for searching)."""
    return json.dumps(value, default=str)
