"""What a review of a frozen plan says, whatever the format: header, approvals, counts.

`render` lays these out as text, a terminal table or markdown. Text from the tenant (names,
summaries) is escaped here: control, bidi and zero-width characters become `\\uXXXX`, so
that no display name can rewrite a review; `md` escapes markdown on top of that.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.actions.base import ChangeKind
from runner.approval import Assessment, where
from runner.frozen import FrozenPlan, FrozenTarget, digest_of, iso

KIND_LABEL = {
    ChangeKind.CHANGE: "change",
    ChangeKind.NOOP: "no-op",
    ChangeKind.MANUAL: "manual",
    ChangeKind.REFUSED: "refused",
    ChangeKind.NOT_APPLICABLE: "not applicable",
}
_MARKDOWN_SPECIAL = frozenset("\\`*_[]<>|~#&!")


def clean(text: object) -> str:
    """`text` with control, format (bidi, zero-width) and line-separator characters escaped."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c
        for c in value
    )


def md(text: object) -> str:
    """`clean` text, escaped for markdown (tables included)."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in clean(text))


def code(text: object) -> str:
    """A markdown code span of `clean` text (escapes do not work inside one)."""
    return "`" + clean(text).replace("`", "'").replace("|", "\\|") + "`"


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """What a rendering shows beside the plan: approvals, the clock, how to name the file."""

    approvals: Sequence[Assessment] | None = None  # with their standing, when given
    now: dt.datetime | None = None  # marks an expired plan
    path: str | None = None  # the plan file in commands (default: where it was read from)
    limit: int | None = None  # targets in text, rows per action in markdown

    def name(self, plan: FrozenPlan) -> str:
        """How commands name the plan file."""
        return self.path or where(plan)


def author_text(author: Any) -> str:
    """`user adele@contoso.com, local user adele` (or `app <client id>, ...`)."""
    if not isinstance(author, Mapping):
        return clean(author)
    kind, name, local = author.get("kind"), author.get("name"), author.get("local_user")
    text = f"{clean(kind)} {clean(name)}" if kind else clean(name)
    return f"{text}, local user {clean(local)}" if local else text


def header(plan: FrozenPlan, *, now: dt.datetime | None) -> list[tuple[str, str]]:
    """(label, value) rows: name, ticket, tenant, author, times, digest, signers."""
    content = plan.content
    tenant = content.get("tenant") or {}
    emulated = "  EMULATED TENANT" if tenant.get("emulated") else ""
    expires = clean(content.get("expires"))
    if now is not None and now >= plan.expires:
        expires += " (expired)"
    digest = plan.digest
    actual = digest_of(content)
    if actual != digest:
        digest += f" (DOES NOT MATCH the content, whose digest is {actual})"
    rows = [
        ("plan", clean(content["plan"].get("name"))),
        ("ticket", clean(content["plan"].get("ticket") or "-")),
        ("tenant", f"{clean(tenant.get('id'))} ({clean(tenant.get('cloud'))}){emulated}"),
        ("author", author_text(content.get("author"))),
        ("created", clean(content.get("created"))),
        ("expires", expires),
        ("digest", digest),
    ]
    if content["plan"].get("description"):
        rows.insert(2, ("description", clean(content["plan"]["description"])))
    signers = plan.safety.get("allowed_signers")
    if signers:
        rows.append(("signers", f"approvals must be signed by a key listed in {clean(signers)}"))
    return rows


def approvals_line(plan: FrozenPlan, approvals: Sequence[Assessment]) -> str:
    """`1 valid of 2 required`."""
    valid = sum(1 for a in approvals if a.counts)
    return f"{valid} valid of {int(plan.safety.get('required_approvals', 1))} required"


def _signature(assessment: Assessment) -> str:
    record = assessment.approval
    if record.signature is None:
        return "unsigned"
    key = clean(record.key_fingerprint or "unknown key")
    if assessment.verified is True:
        return f"signature verified, {key}"
    if assessment.verified is False:
        return f"signature rejected, {key}"
    return f"signed, {key}, not checked"


def approval_line(assessment: Assessment) -> tuple[str, str]:
    """(status, description) of one approval."""
    record = assessment.approval
    text = f"{clean(record.approver)} at {iso(record.time)} ({_signature(assessment)})"
    if assessment.reason:
        text += f": {clean(assessment.reason)}"
    if record.comment:
        text += f' — "{clean(record.comment)}"'
    return ("valid" if assessment.counts else "not counted"), text


def summary(content: Mapping[str, Any]) -> tuple[str, str]:
    """(targets line, actions line) from the content's summary counts."""
    found = content.get("summary") or {}
    refused = found.get("refused_targets", 0)
    count = found.get("targets", 0)
    targets = f"{count:,} target{'' if count == 1 else 's'} ({refused:,} refused), "
    targets += f"{found.get('unresolved', 0):,} unresolved"
    counts = found.get("actions") or {}
    actions = ", ".join(f"{label} {counts.get(str(k), 0):,}" for k, label in KIND_LABEL.items())
    return targets, actions


def by_action(content: Mapping[str, Any]) -> list[tuple[str, Mapping[str, int]]]:
    """Counts per action, in the plan's order of actions (others after, by name).

    The frozen file's keys are sorted, so the order is taken from `plan.actions`, not from
    the summary mapping.
    """
    counts: Mapping[str, Mapping[str, int]] = (content.get("summary") or {}).get("by_action") or {}
    order = [a for a in (content.get("plan") or {}).get("actions") or () if a in counts]
    order += sorted(a for a in counts if a not in order)
    return [(action, counts[action]) for action in order]


def flags(target: FrozenTarget) -> list[str]:
    """`Guest` (any type but Member) and `synced`, as they apply."""
    kind = [clean(target.user_type)] if target.user_type != "Member" else []
    return kind + (["synced"] if target.synced else [])


def unresolved_items(plan: FrozenPlan) -> list[Any]:
    """The plan's unresolved targets, each with where it was written (kept in `info`, outside
    the digest) put back for display."""
    items = list(plan.content.get("unresolved") or [])
    sources = plan.info.get("unresolved_sources")
    if not isinstance(sources, list) or len(sources) != len(items):
        return items
    return [
        {**item, "source": source} if isinstance(item, Mapping) and source else item
        for item, source in zip(items, sources, strict=True)
    ]


def unresolved(item: Any) -> str:
    """One unresolved target: `where: kind value: reason`, from whatever keys it has."""
    if not isinstance(item, Mapping):
        return clean(item)
    if item.get("description"):
        return clean(item["description"])
    head = " ".join(clean(item[k]) for k in ("kind", "value", "selector") if item.get(k))
    place = item.get("source") or item.get("where")
    parts = [clean(place)] if place else []
    parts += [head] if head else []
    parts += [clean(item["reason"])] if item.get("reason") else []
    known = {"kind", "value", "selector", "source", "where", "reason"}
    rest = [f"{clean(k)}={clean(v)}" for k, v in sorted(item.items()) if k not in known]
    return ": ".join(parts + rest) or "(no details)"


def more(count: int, what: str, path: str) -> str:
    """The line that says how many were left out and where to see them all."""
    return f"… {count:,} more {what} not shown: entra-bulk show {path} --format json"


def shown(plan: FrozenPlan, limit: int) -> tuple[list[FrozenTarget], int]:
    """The first `limit` targets, and how many more there are."""
    raw = plan.content.get("targets") or []
    return [FrozenTarget.from_json(item) for item in raw[:limit]], max(0, len(raw) - limit)
