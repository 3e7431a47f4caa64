"""Rendering a frozen plan: exact text and markdown, JSON round trip, escaping, large plans."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest

from runner import approval, frozen, render
from runner.actions.base import ChangeKind
from runner.frozen import FrozenPlan
from runner.review import View
from tests.approval_support import NOW, make_plan, target

UNRESOLVED = {
    "kind": "user",
    "value": "bob@contoso.com",
    "reason": "not found in the tenant",
    "source": "plan.yaml:12:5",
}
WARNING = "revoke_sessions revokes every session, a superset of MFA sessions"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _small() -> tuple[FrozenPlan, View]:
    plan = make_plan(emulated=True, unresolved=[UNRESOLVED], warnings=[WARNING])
    records = [
        approval.record(plan, approver="bob", comment="checked the list", now=NOW),
        approval.record(plan, approver="adele", comment=None, now=NOW),
    ]
    assessed = approval.assess(plan, records, verify_signature=lambda record: None)
    return plan, View(approvals=assessed, now=NOW, path="breach.plan.json")


def test_text_of_a_small_plan_is_exact() -> None:
    """Plain text: header with approvals, one block per target, lists and counts."""
    plan, view = _small()
    assert render.render(plan, "text", view) == (
        "plan       breach-2026-03-01\n"
        "ticket     INC-4821\n"
        "tenant     8f1c2b3a-0000-4000-8000-00000000a11c (global)  EMULATED TENANT\n"
        "author     user Adele.Vance@contoso.com, local user adele\n"
        "created    2026-03-01T12:00:00Z\n"
        "expires    2026-03-02T12:00:00Z\n"
        f"digest     {plan.digest}\n"
        "approvals  1 valid of 1 required\n"
        '  valid        bob at 2026-03-01T13:00:00Z (unsigned) — "checked the list"\n'
        "  not counted  adele at 2026-03-01T13:00:00Z (unsigned): the plan's author may not "
        "approve it\n"
        "\n"
        "megan.bowen@contoso.com  Megan Bowen  [synced]\n"
        "  reset_password              change   will set a generated temporary password\n"
        "    warning: synced from on-premises: Graph refuses the password write\n"
        "  require_mfa_reregistration  change   will delete 2 methods: mobile phone +1 555 0100, "
        "Authenticator on iPhone\n"
        "  delete_app_passwords        manual   manual: Graph has no API to delete app passwords\n"
        "\n"
        "lee.gu@contoso.com  Lee Gu  roles: Global Administrator  REFUSED: privileged role Global "
        "Administrator\n"
        "  reset_password              refused  refused: privileged role Global Administrator\n"
        "  require_mfa_reregistration  refused  refused: privileged role Global Administrator\n"
        "  delete_app_passwords        refused  refused: privileged role Global Administrator\n"
        "\n"
        "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com  Guest User  [Guest]\n"
        "  reset_password              change   will set a generated temporary password\n"
        "  require_mfa_reregistration  no-op    no-op: no methods of kinds phone\n"
        "  delete_app_passwords        manual   manual: Graph has no API to delete app passwords\n"
        "\n"
        "unresolved (1):\n"
        "  plan.yaml:12:5: user bob@contoso.com: not found in the tenant\n"
        "\n"
        "warnings (1):\n"
        "  revoke_sessions revokes every session, a superset of MFA sessions\n"
        "\n"
        "summary    3 targets (1 refused), 1 unresolved\n"
        "           change 3, no-op 1, manual 2, refused 3, not applicable 0"
    )


def test_markdown_of_a_small_plan_is_exact() -> None:
    """Markdown: header table, counts, open details per action, approvals, apply command."""
    plan, view = _small()
    rows_header = (
        "| user | display name | roles | kind | what will happen |\n|---|---|---|---|---|\n"
    )
    megan = "| megan.bowen@contoso.com \\[synced\\] | Megan Bowen |  | "
    lee = (
        "| lee.gu@contoso.com | Lee Gu | Global Administrator (REFUSED: privileged role Global "
        "Administrator) | refused | refused: privileged role Global Administrator |\n"
    )
    guest = "| guest\\_fabrikam.com\\#EXT\\#@contoso.onmicrosoft.com \\[Guest\\] | Guest User |  | "
    assert render.render(plan, "markdown", view) == (
        "## entra-bulk plan breach-2026-03-01\n"
        "\n"
        "| | |\n"
        "|---|---|\n"
        "| ticket | INC-4821 |\n"
        "| tenant | 8f1c2b3a-0000-4000-8000-00000000a11c (global)  **EMULATED TENANT** |\n"
        "| author | user Adele.Vance@contoso.com, local user adele |\n"
        "| created | 2026-03-01T12:00:00Z |\n"
        "| expires | 2026-03-02T12:00:00Z |\n"
        f"| digest | `{plan.digest}` |\n"
        "| approvals | 1 valid of 1 required |\n"
        "\n"
        "### Summary\n"
        "\n"
        "3 targets (1 refused), 1 unresolved.\n"
        "\n"
        "| action | change | no-op | manual | refused | not applicable |\n"
        "|---|---:|---:|---:|---:|---:|\n"
        "| `reset_password` | 2 | 0 | 0 | 1 | 0 |\n"
        "| `require_mfa_reregistration` | 1 | 1 | 0 | 1 | 0 |\n"
        "| `delete_app_passwords` | 0 | 0 | 2 | 1 | 0 |\n"
        "| **total** | **3** | **1** | **2** | **3** | **0** |\n"
        "\n"
        "### Targets\n"
        "\n"
        "<details open>\n"
        "<summary><code>reset_password</code>: 2 change, 1 refused</summary>\n"
        "\n" + rows_header + megan + "change | will set a generated temporary password<br>"
        "warning: synced from on-premises: Graph refuses the password write |\n"
        + lee
        + guest
        + "change | will set a generated temporary password |\n"
        "\n"
        "</details>\n"
        "\n"
        "<details open>\n"
        "<summary><code>require_mfa_reregistration</code>: 1 change, 1 no-op, 1 refused</summary>\n"
        "\n" + rows_header + megan + "change | will delete 2 methods: mobile phone +1 555 0100, "
        "Authenticator on iPhone |\n" + lee + guest + "no-op | no-op: no methods of kinds phone |\n"
        "\n"
        "</details>\n"
        "\n"
        "<details open>\n"
        "<summary><code>delete_app_passwords</code>: 2 manual, 1 refused</summary>\n"
        "\n"
        + rows_header
        + megan
        + "manual | manual: Graph has no API to delete app passwords |\n"
        + lee
        + guest
        + "manual | manual: Graph has no API to delete app passwords |\n"
        "\n"
        "</details>\n"
        "\n"
        "### Approvals\n"
        "\n"
        "| status | approval |\n"
        "|---|---|\n"
        '| valid | bob at 2026-03-01T13:00:00Z (unsigned) — "checked the list" |\n'
        "| not counted | adele at 2026-03-01T13:00:00Z (unsigned): the plan's author may not "
        "approve it |\n"
        "\n"
        "### Unresolved targets\n"
        "\n"
        "- plan.yaml:12:5: user bob@contoso.com: not found in the tenant\n"
        "\n"
        "### Warnings\n"
        "\n"
        "- revoke\\_sessions revokes every session, a superset of MFA sessions\n"
        "\n"
        "### Apply\n"
        "\n"
        "```sh\n"
        f"entra-bulk apply breach.plan.json --expect-digest {plan.digest}\n"
        "```"
    )


def test_json_round_trips_to_the_same_digest() -> None:
    """`--format json` carries the content unchanged: refreezing it gives the same digest."""
    plan, view = _small()
    text = render.render(plan, "json", view)
    data = json.loads(text)
    assert data["content"] == json.loads(json.dumps(plan.content))
    assert data["digest"] == plan.digest == frozen.digest_of(data["content"])
    assert frozen.freeze(data["content"], info={}).digest == plan.digest
    assert data["digest_matches"] is True
    assert [(a["approver"], a["counts"], a["reason"]) for a in data["approvals"]] == [
        ("bob", True, None),
        ("adele", False, "the plan's author may not approve it"),
    ]
    assert render.render(plan, "json", view) == text  # stable
    assert list(data) == sorted(data)
    assert "approvals" not in json.loads(render.render(plan, "json"))


def test_the_header_flags_an_expired_and_an_edited_plan() -> None:
    """`(expired)` past the expiry; both digests when the content was edited."""
    plan = make_plan()
    edited = dataclasses.replace(plan, content={**plan.content, "warnings": ["edited"]})
    actual = frozen.digest_of(edited.content)
    later = NOW.replace(year=2027)
    lines = render.render(edited, "text", View(now=later)).splitlines()
    assert lines[5] == "expires    2026-03-02T12:00:00Z (expired)"
    assert lines[6] == (
        f"digest     {plan.digest} (DOES NOT MATCH the content, whose digest is {actual})"
    )
    assert not json.loads(render.render(edited, "json"))["digest_matches"]


def test_the_terminal_table_has_every_change_and_colour_only_when_asked() -> None:
    """On a terminal: a rich table; ANSI colour with `color`, none without."""
    plan, view = _small()
    plain = render.render(plan, "text", view, terminal=True, color=False, width=160)
    assert not ANSI.search(plain)
    for needle in (
        "megan.bowen@contoso.com",
        "Guest User [Guest]",
        "REFUSED: privileged role Global Administrator",
        "no-op: no methods of kinds phone",
        "warning: synced from on-premises",
        "summary    3 targets (1 refused), 1 unresolved",
        f"digest     {plan.digest}",
    ):
        assert needle in plain, needle
    coloured = render.render(plan, "text", view, terminal=True, color=True, width=160)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == plain


def test_tenant_text_cannot_rewrite_the_review() -> None:
    """Control, bidi and markup in names are escaped in text, the table and markdown."""
    hostile = target(
        "eve@contoso.com",
        "Eve\x1b[2K\u202e[bold]x[/bold] | <img src=x>",
        ("disable_account", ChangeKind.CHANGE, "will block sign-in\nall good"),
        number=9,
    )
    plan = make_plan(targets=[hostile])
    text = render.render(plan, "text")
    assert "Eve\\u001b[2K\\u202e[bold]x[/bold] | <img src=x>" in text
    assert "will block sign-in\\u000aall good" in text
    table = render.render(plan, "text", terminal=True, color=True, width=200)
    assert "\x1b[2K" not in table and "\u202e" not in table
    assert "[bold]x[/bold]" in ANSI.sub("", table)
    markdown = render.render(plan, "markdown")
    assert "Eve\\\\u001b\\[2K\\\\u202e\\[bold\\]x\\[/bold\\] \\| \\<img src=x\\>" in markdown
    assert not re.search(r"(?<!\\)<img", markdown)


def test_an_app_author_and_a_plan_without_ticket() -> None:
    """An app-only author reads `app <client id>, local user …`; no ticket shows `-`."""
    author = {"kind": "app", "name": "11111111-2222-3333-4444-555555555555", "local_user": "svc"}
    lines = render.render(make_plan(author=author, ticket=None), "text").splitlines()
    assert lines[1] == "ticket     -"
    assert lines[3] == "author     app 11111111-2222-3333-4444-555555555555, local user svc"


def test_an_unknown_format_is_a_bug_not_a_rendering() -> None:
    """Formats are a closed set (the CLI offers exactly these)."""
    assert render.FORMATS == ("text", "json", "markdown")
    with pytest.raises(ValueError, match="unknown format 'html'"):
        render.render(make_plan(), "html")


def _large(count: int) -> FrozenPlan:
    changes = (
        ("revoke_sessions", ChangeKind.CHANGE, "will revoke all sign-in sessions"),
        ("disable_account", ChangeKind.NOOP, "no-op: already disabled"),
    )
    targets = [
        target(f"user{n}@contoso.com", f"User {n}", *changes, number=n) for n in range(count)
    ]
    warnings = [f"warning {n}" for n in range(150)]
    return make_plan(targets=targets, warnings=warnings)


def test_a_plan_of_10000_targets_renders_quickly_and_caps_its_details() -> None:
    """10,000 targets: every format in well under a second each; text/markdown capped."""
    plan = _large(10_000)
    view = View(path="big.plan.json")
    timings = {}
    outputs = {}
    for fmt, terminal in (("text", False), ("text", True), ("markdown", False), ("json", False)):
        started = time.perf_counter()
        outputs[fmt, terminal] = render.render(plan, fmt, view, terminal=terminal, width=120)
        timings[fmt, terminal] = time.perf_counter() - started
    assert max(timings.values()) < 3.0, timings
    text = outputs["text", False]
    assert text.count("\n  revoke_sessions") == render.TEXT_LIMIT
    assert "… 9,900 more targets not shown: entra-bulk show big.plan.json --format json" in text
    assert "  … 50 more warnings not shown: entra-bulk show big.plan.json --format json" in text
    assert "summary    10,000 targets (0 refused), 0 unresolved" in text
    assert "… 9,900 more targets not shown" in outputs["text", True]
    markdown = outputs["markdown", False]
    assert "<details>\n<summary><code>revoke_sessions</code>: 10,000 change</summary>" in markdown
    assert markdown.count("| will revoke all sign-in sessions |") == render.MARKDOWN_LIMIT
    assert (
        "… 9,960 more revoke\\_sessions rows not shown: entra-bulk show big.plan.json --format json"
    ) in markdown
    assert len(markdown) < 65_536  # fits in one GitHub comment
    assert len(json.loads(outputs["json", False])["content"]["targets"]) == 10_000
