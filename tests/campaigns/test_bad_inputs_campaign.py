"""Bad inputs (reliability.md Part 2 §2.2): all 50, each a fixture of tests/fixtures/plans
(15, the 500 MB file, is made sparse at run time). File-level ones go through `validate` and
through `plan` against an emulated tenant: refused with exit 2 and file:line (and the field
where the parser got that far), no network connection opened (an audit hook counts every
socket connect and name lookup) and no request reaching the tenant, nothing written. The
tenant-dependent ones (18-21, 36, 39, 43, 44, 46-49) are planned and applied against it.
The exact wording of each message is tested in tests/test_validate.py; this campaign counts."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import getpass
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runner import frozen, validate
from runner.cli import Console, main
from runner.config import settings_from_connection
from runner.emulator import Emulator, EmulatorConfig
from runner.graph.client import GraphClient
from runner.planner import make_plan
from tests.campaigns.campaign_support import table
from tests.campaigns.conftest import Figures

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plans"
CSV_OPTIONS = ("--actions", "revoke_sessions", "--name", "fixture")
NETWORK_EVENTS = frozenset({"socket.connect", "socket.getaddrinfo", "socket.gethostbyname"})


class NetworkWatch:
    """Counts socket connects and name lookups while armed (an audit hook: it sees every
    connection Python makes, whatever library makes it; hooks cannot be removed, so one is
    installed per process and only counts while armed)."""

    armed = False
    events: ClassVar[list[tuple[str, str]]] = []
    installed = False

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if cls.armed and event in NETWORK_EVENTS:
            cls.events.append((event, repr(args)[:80]))


@contextlib.contextmanager
def watching_network() -> Iterator[list[tuple[str, str]]]:
    """The network events seen inside the block."""
    if not NetworkWatch.installed:
        sys.addaudithook(NetworkWatch.hook)
        NetworkWatch.installed = True
    NetworkWatch.events.clear()
    NetworkWatch.armed = True
    try:
        yield NetworkWatch.events
    finally:
        NetworkWatch.armed = False


@dataclass
class Ran:
    code: int
    out: str
    err: str
    network: int


def cli(*args: str) -> Ran:
    """The CLI in this process, with the network watched."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with watching_network() as events:
        try:
            main(list(args), console=Console(stdout=out, stderr=err))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Ran(code=code, out=out.getvalue(), err=err.getvalue(), network=len(list(events)))


@dataclass
class Case:
    """One bad input and what the runner did with it."""

    number: str
    what: str
    outcome: str = ""  # rejected | accepted | refused
    located: bool = False  # file:line given
    named: bool | None = None  # the field (pointer or column) given; None: none applies
    network: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)
    tenant: bool = False


# (number, fixture, expected: reject | accept | accept-warn)
FILE_LEVEL: list[tuple[str, str, str]] = [
    ("1", "01-python-tag.yaml", "reject"),
    ("2", "02-billion-laughs.yaml", "reject"),
    ("3", "03-merge-key.yaml", "reject"),
    ("3", "03-merge-key-inline.yaml", "reject"),
    ("4", "04-duplicate-key.yaml", "reject"),
    ("5", "05-yaml11-booleans.yaml", "reject"),
    ("6", "06-leading-zero.yaml", "accept"),
    ("7", "07-date.yaml", "reject"),
    ("8", "08-multi-document.yaml", "reject"),
    ("9", "09-empty.yaml", "reject"),
    ("9", "09-comments-only.yaml", "reject"),
    ("10", "10-typo-key.yaml", "reject"),
    ("11", "11-unknown-action.yaml", "reject"),
    ("12", "12-targets-string.yaml", "reject"),
    ("13", "13-tab-indent.yaml", "reject"),
    ("13", "13-invalid-syntax.yaml", "reject"),
    ("14", "14-deep-nesting.yaml", "reject"),
    ("15", "15-huge.yaml", "reject"),
    ("16", "16-cp1252.yaml", "reject"),
    ("17", "17-version-2.yaml", "reject"),
    ("19", "19-missing-required-option.yaml", "reject"),
    ("22", "22-utf8-bom.csv", "accept"),
    ("23", "23-utf16-unicode-text.txt", "accept"),
    ("24", "24-cp1252.csv", "reject"),
    ("25", "25-excel-replaced.csv", "reject"),
    ("26", "26-semicolon.csv", "reject"),
    ("27", "27-mixed-newlines.csv", "accept"),
    ("28", "28-embedded-newline.csv", "reject"),
    ("29", "29-unterminated-quote.csv", "reject"),
    ("30", "30-field-too-large.csv", "reject"),
    ("31", "31-nul.csv", "reject"),
    ("32", "32-ragged.csv", "reject"),
    ("33", "33-duplicate-header.csv", "reject"),
    ("34", "34-missing-column.csv", "reject"),
    ("35", "35-header-only.csv", "reject"),
    ("36", "36-formula-note.csv", "accept"),
    ("37", "37-whitespace.yaml", "accept-warn"),
    ("37", "37-nbsp.yaml", "reject"),
    ("38", "38-case-duplicate.yaml", "accept-warn"),
    ("40", "40-homoglyph.yaml", "reject"),
    ("41", "41-invisible.yaml", "reject"),
    ("42", "42-lengths.yaml", "reject"),
    ("45", "45-bad-guid.yaml", "reject"),
    ("50", "50-wildcards.yaml", "reject"),
]
# Problems found before the file parsed into a document have no field to name.
NO_FIELD = {"1", "2", "3", "4", "8", "9", "13", "14", "15", "16", "24", "26", "29", "30", "31"}
NO_FIELD |= {"32", "34", "35"}
LOCATION = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+)(:\d+)?: ")
# Item 15 is refused by its size before a byte is read: there is no line to name.
WHOLE_FILE = re.compile(r"^(?P<path>[^:]+): plan exceeds 10 MB")


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Item 15: a 500 MB plan (sparse: nothing to read, nothing to commit)."""
    path = tmp_path_factory.mktemp("huge") / "15-huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(500 * 1024 * 1024)
    return path


@pytest.fixture
def tenant(
    tmp_path: Path, tenant_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Emulator]:
    import shutil

    state = tmp_path / "tenant"
    shutil.copytree(tenant_template, state)
    emulator = Emulator(EmulatorConfig(state_dir=state, users=60, seed=1))
    emulator.start()
    monkeypatch.setenv("ENTRA_BULK_EMULATOR", str(emulator.connection_file))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    yield emulator
    emulator.stop()


def _requests(emulator: Emulator) -> int:
    assert emulator.store is not None
    return int(emulator.store.query_one("SELECT count(*) AS n FROM requests")["n"])


def _file_case(number: str, path: Path, expected: str, emulator: Emulator) -> Case:
    case = Case(number=number, what=path.name)
    extra = CSV_OPTIONS if path.suffix in {".csv", ".txt"} else ()
    checked = cli("validate", str(path), *extra)
    before = _requests(emulator)
    planned = cli("--tenant", "emulator", "plan", str(path), *extra, "-o", "out.plan.json")
    case.requests = _requests(emulator) - before
    case.network = checked.network + (planned.network if expected == "reject" else 0)
    lines = [
        line for line in checked.out.splitlines() if LOCATION.match(line) or WHOLE_FILE.match(line)
    ]
    errors = [line for line in lines if ": warning: " not in line]
    warnings = [line for line in lines if ": warning: " in line]
    if expected == "reject":
        case.outcome = "rejected" if checked.code == 2 and errors else f"exit {checked.code}"
        case.located = bool(errors) and all(
            LOCATION.match(e) or WHOLE_FILE.match(e) for e in errors
        )
        if number not in NO_FIELD:
            case.named = all(re.search(r": (/\S*|column \S+): ", e) for e in errors)
        if planned.code != 2 or case.network or case.requests or Path("out.plan.json").exists():
            case.problems.append(
                f"plan: exit {planned.code}, {case.network} connections, {case.requests} requests"
            )
        if case.outcome != "rejected":
            case.problems.append(f"not rejected: {checked.out[-300:]}")
    else:
        case.outcome = "accepted" + (" with a warning" if warnings else "")
        case.located = True
        if checked.code != 0 or (expected == "accept-warn" and not warnings):
            case.problems.append(f"validate exit {checked.code}: {checked.out[-300:]}")
        if case.network:
            case.problems.append(f"validate made {case.network} connections")
        Path("out.plan.json").unlink(missing_ok=True)
    if Path("runs").exists():
        case.problems.append("a runs folder was created")
    return case


def _plan(path: Path, *extra: str, name: str = "case") -> tuple[Ran, dict[str, Any] | None]:
    target = Path(f"{name}.plan.json")
    ran = cli("--tenant", "emulator", "plan", str(path), *extra, "-o", str(target))
    content = json.loads(target.read_text())["content"] if target.exists() else None
    return ran, content


def _target(content: dict[str, Any], upn: str) -> dict[str, Any]:
    return next(t for t in content["targets"] if t["upn"].lower() == upn.lower())


def _tenant_cases(emulator: Emulator, tmp_path: Path) -> list[Case]:
    cases: list[Case] = []

    def case(number: str, what: str, ok: bool, detail: str, outcome: str = "refused") -> None:
        c = Case(number=number, what=what, outcome=outcome if ok else "NOT " + outcome)
        c.located = True
        c.tenant = True
        if not ok:
            c.problems.append(detail)
        cases.append(c)

    base = FIXTURES / "18-20-21-approved.yaml"
    # 18: a plan of this tenant applied in another tenant.
    ran, _ = _plan(base, name="t18")
    approved = cli("approve", "t18.plan.json", "--approver", "reviewer")
    other_state = tmp_path / "other-tenant"
    with Emulator(EmulatorConfig(state_dir=other_state, users=60, seed=2)) as other:
        os.environ["ENTRA_BULK_EMULATOR"] = str(other.connection_file)
        try:
            applied = cli("--tenant", "emulator", "apply", "t18.plan.json", "--yes")
        finally:
            os.environ["ENTRA_BULK_EMULATOR"] = str(emulator.connection_file)
        ids = emulator.tenant_id in applied.err and other.tenant_id in applied.err
        case("18", "plan applied in another tenant", applied.code == 3 and ids, applied.err)
    del ran, approved
    # 20: the plan edited after its approval.
    _plan(base, name="t20")
    cli("approve", "t20.plan.json", "--approver", "reviewer")
    data = json.loads(Path("t20.plan.json").read_text())
    extra = dict(data["content"]["targets"][0], upn="alex.wilber@contoso.com")
    data["content"]["targets"].append(extra)
    Path("t20.plan.json").write_text(json.dumps(data))
    applied = cli("--tenant", "emulator", "apply", "t20.plan.json", "--yes")
    ok = applied.code == 3 and "digest does not match the content" in applied.err
    case("20", "plan edited after approval", ok, applied.err)
    # 21: approved by its own author; and expired.
    _plan(base, name="t21")
    cli("approve", "t21.plan.json", "--approver", getpass.getuser())
    applied = cli("--tenant", "emulator", "apply", "t21.plan.json", "--yes")
    ok = applied.code == 3 and "author" in applied.err
    case("21", "approved by the plan's author", ok, applied.err)
    source = validate.load(str(base)).plan
    assert source is not None
    settings = settings_from_connection(emulator.info)
    token = emulator.mint_app_token()

    class Tokens:
        description = "test token"

        def __init__(self, value: str) -> None:
            self.value = value

        def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
            return self.value

    with GraphClient(root_url=emulator.graph_url, token=Tokens(token).access_token) as client:
        old = make_plan(
            source,
            client=client,
            tokens=Tokens(token),
            settings=settings,
            now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
        )
    frozen.write(old, Path("t21b.plan.json"))
    cli("approve", "t21b.plan.json", "--approver", "reviewer")
    applied = cli("--tenant", "emulator", "apply", "t21b.plan.json", "--yes")
    case(
        "21",
        "plan (and its approval) expired",
        applied.code == 3 and "expired" in applied.err,
        applied.err,
    )
    # 36: formula-prefixed notes accepted as data, neutralised in the report.
    ran, content = _plan(FIXTURES / "36-formula-note.csv", *CSV_OPTIONS, name="t36")
    cli("approve", "t36.plan.json", "--approver", "reviewer")
    applied = cli("--tenant", "emulator", "apply", "t36.plan.json", "--yes", "--no-canary")
    reports = list(Path("runs").glob("*/report.csv"))
    report = (
        reports[0].read_text(encoding="utf-8-sig")
        if reports
        else f"exit {applied.code}: {applied.err}{applied.out}"
    )
    notes = [row.get("note", "") for row in csv.DictReader(io.StringIO(report))]
    # = + - @ get a leading quote; a leading tab or CR is stripped when the plan is read.
    neutral = len(notes) == 6 and not any(
        n.startswith(("=", "+", "-", "@", "\t", "\r")) for n in notes
    )
    neutral = neutral and sum(note.startswith("'") for note in notes) == 4
    case(
        "36",
        "formula-prefixed notes (= + - @ tab CR)",
        applied.code == 0 and neutral,
        report[-400:],
        outcome="accepted, neutralised",
    )
    # 39: the same user by UPN and by object id: one target.
    ran, content = _plan(FIXTURES / "39-upn-and-object-id.yaml", name="t39")
    ok = content is not None and len(content["targets"]) == 1
    case("39", "same user by UPN and object id", ok, ran.err, outcome="deduplicated")
    # 43: a domain the tenant does not have.
    ran, content = _plan(FIXTURES / "43-unverified-domain.yaml", name="t43")
    ok = (
        "domain contoso-typo.com is not a tenant domain" in ran.out + ran.err
        and content is not None
    )
    ok = ok and all(t["upn"] != "alice@contoso-typo.com" for t in content["targets"])
    case("43", "domain not in the tenant", ok, ran.out[-300:])
    # 44: a guest and revoke_sessions: not applicable.
    ran, content = _plan(FIXTURES / "44-guest-revoke.yaml", name="t44")
    kinds = [a["kind"] for t in (content or {}).get("targets", []) for a in t["actions"]]
    case(
        "44",
        "guest with revoke_sessions",
        kinds == ["not_applicable"],
        str(kinds),
        outcome="not applicable",
    )
    # 46, 48: break-glass and privileged targets refused, the others planned.
    for number, name, upn, reason in (
        ("46", "46-break-glass.yaml", "breakglass1@contoso.onmicrosoft.com", "protected"),
        ("48", "48-privileged.yaml", "it.admin@contoso.com", "privileged role"),
    ):
        ran, content = _plan(FIXTURES / name, name=f"t{number}")
        refused = str(_target(content, upn)["refused"] or "") if content else ""
        other = _target(content, "adele.vance@contoso.com")["refused"] if content else "?"
        case(number, name[3:-5], reason in refused and other is None, refused)
    # 47: the signed-in administrator is a target (a delegated token).
    user_token = emulator.mint_user_token("pa.admin@contoso.com")
    plan47 = validate.load(str(FIXTURES / "47-self.yaml")).plan
    assert plan47 is not None
    with GraphClient(root_url=emulator.graph_url, token=Tokens(user_token).access_token) as c:
        made = make_plan(
            plan47,
            client=c,
            tokens=Tokens(user_token),
            settings=settings,
            now=dt.datetime.now(dt.UTC),
        )
    refused = str(made.content["targets"][0]["refused"] or "")
    case("47", "the signed-in administrator", "signed-in administrator" in refused, refused)
    # 49: more than 50 users without the exact --confirm-count (a 120-user tenant).
    with Emulator(EmulatorConfig(state_dir=tmp_path / "big-tenant", users=120, seed=1)) as big:
        os.environ["ENTRA_BULK_EMULATOR"] = str(big.connection_file)
        try:
            ran, content = _plan(FIXTURES / "49-over-fifty.yaml", name="t49")
            assert content is not None, ran.err
            summary = content["summary"]
            acting = int(summary["targets"]) - int(summary["refused_targets"])
            none = cli("--tenant", "emulator", "apply", "t49.plan.json", "--yes")
            off = cli(
                "--tenant",
                "emulator",
                "apply",
                "t49.plan.json",
                "--yes",
                "--confirm-count",
                str(acting - 1),
            )
            assert big.store is not None
            writes = big.store.query_one("SELECT count(*) AS n FROM requests WHERE write = 1")["n"]
        finally:
            os.environ["ENTRA_BULK_EMULATOR"] = str(emulator.connection_file)
    ok = acting > 50 and none.code == off.code == 3 and f"--confirm-count {acting}" in none.err
    ok = ok and writes == 0
    case("49", f"{acting} users without the exact --confirm-count", ok, none.err + off.err)
    return cases


def test_every_bad_input_is_handled(
    tenant: Emulator, tmp_path: Path, huge: Path, figures: Figures
) -> None:
    """All 50 bad inputs: file-level ones refused with file:line (and field) before any
    connection; tenant-dependent ones refused, deduplicated or neutralised as specified."""
    cases = []
    for number, name, expected in FILE_LEVEL:
        path = huge if name == "15-huge.yaml" else FIXTURES / name
        cases.append(_file_case(number, path, expected, tenant))
    ledger_before = _requests(tenant)
    cases += _tenant_cases(tenant, tmp_path)
    del ledger_before
    numbers = {c.number for c in cases}
    assert numbers == {str(n) for n in range(1, 51)}, sorted(set(map(str, range(1, 51))) - numbers)
    rejected = [c for c in cases if c.outcome == "rejected"]
    rows = [
        {
            "#": c.number,
            "input": c.what,
            "outcome": c.outcome,
            "file:line": "-" if c.tenant else ("yes" if c.located else "no"),
            "field": {True: "yes", False: "no", None: "-"}[c.named],
            "connections": c.network,
        }
        for c in cases
    ]
    file_level = [c for c in cases if c.number not in TENANT_NUMBERS]
    with_field = sum(1 for c in rejected if c.named is not None)
    summary = (
        f"{len(numbers)}/50 items covered by {len(cases)} fixtures; "
        f"{len(rejected)} file-level fixtures rejected, all with file:line "
        f"({sum(1 for c in rejected if c.located)}), with the field where one exists "
        f"({sum(1 for c in rejected if c.named)} of {with_field}); "
        f"network connections while validating the {len(file_level)} file-level fixtures "
        f"and planning the {len(rejected)} rejected ones: "
        f"{sum(c.network for c in file_level)}; requests reaching the tenant from `plan` of "
        f"the rejected ones: {sum(c.requests for c in rejected)}"
    )
    figures("bad inputs", summary + "\n\n" + table(rows, list(rows[0])))
    problems = [f"{c.number} {c.what}: {p}" for c in cases for p in c.problems]
    assert not problems, "\n".join(problems)
    assert all(c.located for c in rejected)
    assert all(c.named is not False for c in rejected)


TENANT_NUMBERS = {"18", "20", "21", "36", "39", "43", "44", "46", "47", "48", "49"}
