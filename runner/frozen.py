"""The frozen plan (`*.plan.json`): what a reviewer approves and what `apply` executes.

    {"content": {...}, "digest": "sha256:<hex>", "info": {...}}

`content` is approved; `digest` is `sha256:` + SHA-256 of its canonical JSON (sorted keys,
no insignificant whitespace, UTF-8; product-spec §6). `info` holds what is informational and
not covered: tool version, Graph URL, source path and hash, where each target was written.
The file holds no secrets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import __version__
from runner.actions.base import Change, ChangeKind
from runner.errors import InputError
from runner.plan import Plan, canonical_bytes, to_data

FORMAT_VERSION = 1
SUPPORTED_FORMATS = frozenset({FORMAT_VERSION})


def digest_of(content: Mapping[str, Any]) -> str:
    """`sha256:` + the SHA-256 of the canonical JSON of `content`."""
    return "sha256:" + hashlib.sha256(canonical_bytes(content)).hexdigest()


def iso(moment: dt.datetime) -> str:
    """UTC, whole seconds, `Z`."""
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """Back from `iso`."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True, kw_only=True)
class FrozenTarget:
    """One target as the frozen plan records it."""

    object_id: str
    upn: str
    display_name: str
    user_type: str
    synced: bool
    privileged_roles: tuple[str, ...]
    fingerprint: str
    changes: tuple[Change, ...]
    refused: str | None = None
    note: str | None = None
    ticket: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The content's form."""
        return {
            "object_id": self.object_id,
            "upn": self.upn,
            "display_name": self.display_name,
            "user_type": self.user_type,
            "synced": self.synced,
            "privileged_roles": list(self.privileged_roles),
            "fingerprint": self.fingerprint,
            "refused": self.refused,
            "note": self.note,
            "ticket": self.ticket,
            "actions": [change.as_json() for change in self.changes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FrozenTarget:
        """Back from the content's form."""
        return cls(
            object_id=str(data["object_id"]),
            upn=str(data["upn"]),
            display_name=str(data.get("display_name") or ""),
            user_type=str(data.get("user_type") or "Member"),
            synced=bool(data.get("synced")),
            privileged_roles=tuple(str(r) for r in data.get("privileged_roles", ())),
            fingerprint=str(data["fingerprint"]),
            changes=tuple(Change.from_json(item) for item in data.get("actions", ())),
            refused=data.get("refused"),
            note=data.get("note"),
            ticket=data.get("ticket"),
        )


def summarise(targets: Sequence[FrozenTarget], unresolved: int) -> dict[str, Any]:
    """Counts per change kind, overall and per action."""
    kinds = {str(kind): 0 for kind in ChangeKind}
    by_action: dict[str, dict[str, int]] = {}
    for target in targets:
        for change in target.changes:
            kinds[str(change.kind)] += 1
            per = by_action.setdefault(change.action, {str(kind): 0 for kind in ChangeKind})
            per[str(change.kind)] += 1
    return {
        "targets": len(targets),
        "refused_targets": sum(1 for t in targets if t.refused),
        "unresolved": unresolved,
        "actions": kinds,
        "by_action": by_action,
    }


def build_content(
    *,
    plan: Plan,
    tenant_id: str,
    cloud: str,
    emulated: bool,
    author: Mapping[str, str],
    created: dt.datetime,
    targets: Sequence[FrozenTarget],
    unresolved: Sequence[Mapping[str, str]],
    warnings: Sequence[str],
) -> dict[str, Any]:
    """The `content` of a frozen plan."""
    data = to_data(plan)
    expires = created + dt.timedelta(hours=plan.safety.plan_ttl_hours)
    return {
        "format_version": FORMAT_VERSION,
        "tenant": {"id": tenant_id, "cloud": cloud, "emulated": emulated},
        "author": dict(author),
        "created": iso(created),
        "expires": iso(expires),
        "plan": {
            "name": data["name"],
            "ticket": data["ticket"],
            "description": data["description"],
            "actions": data["actions"],
            "options": data["options"],
            "safety": data["safety"],
        },
        "targets": [target.as_json() for target in targets],
        "unresolved": [dict(item) for item in unresolved],
        "warnings": list(warnings),
        "summary": summarise(targets, len(unresolved)),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class FrozenPlan:
    """A frozen plan as read from disk."""

    path: Path | None
    content: Mapping[str, Any]
    digest: str
    info: Mapping[str, Any]

    @property
    def tenant_id(self) -> str:
        """The tenant the plan was made against."""
        return str(self.content["tenant"]["id"])

    @property
    def name(self) -> str:
        """The plan's name."""
        return str(self.content["plan"]["name"])

    @property
    def expires(self) -> dt.datetime:
        """When the plan stops being applicable."""
        return parse_iso(str(self.content["expires"]))

    @property
    def safety(self) -> Mapping[str, Any]:
        """The plan's safety settings."""
        return dict(self.content["plan"]["safety"])

    def options(self, action: str) -> Mapping[str, Any]:
        """The options of one action."""
        return dict(self.content["plan"]["options"].get(action, {}))

    def targets(self) -> list[FrozenTarget]:
        """Every target, in plan order."""
        return [FrozenTarget.from_json(item) for item in self.content["targets"]]

    def digest_matches(self) -> bool:
        """True when `digest` is the digest of `content` (nothing was edited)."""
        return digest_of(self.content) == self.digest

    def document(self) -> dict[str, Any]:
        """The file's JSON."""
        return {"content": dict(self.content), "digest": self.digest, "info": dict(self.info)}


def freeze(content: Mapping[str, Any], *, info: Mapping[str, Any]) -> FrozenPlan:
    """A frozen plan for `content`, with its digest."""
    return FrozenPlan(
        path=None,
        content=content,
        digest=digest_of(content),
        info={"tool_version": __version__, **info},
    )


def write(plan: FrozenPlan, path: Path) -> None:
    """Write atomically (temporary file, fsync, rename)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        # Streamed: `json.dumps` with an indent first gathers the text as millions of small
        # pieces (for 100,000 targets, 320 MB more at its peak than this).
        json.dump(plan.document(), handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def read(path: Path) -> FrozenPlan:
    """Read a frozen plan; InputError (exit 2) when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{path}: cannot read the frozen plan: {exc.strerror}"
        raise InputError(msg) from None
    except ValueError as exc:
        msg = f"{path}: not a frozen plan (invalid JSON: {exc})"
        raise InputError(msg) from None
    if not isinstance(data, dict) or not {"content", "digest"} <= set(data):
        msg = (
            f"{path}: not a frozen plan (expected 'content' and 'digest'); "
            "make one with entra-bulk plan"
        )
        raise InputError(msg)
    content = data["content"]
    if not isinstance(content, dict) or not isinstance(data["digest"], str):
        msg = f"{path}: not a frozen plan (malformed content or digest)"
        raise InputError(msg)
    for key in ("format_version", "tenant", "plan", "targets", "expires", "author"):
        if key not in content:
            msg = f"{path}: not a frozen plan (content has no {key!r})"
            raise InputError(msg)
    return FrozenPlan(
        path=path, content=content, digest=data["digest"], info=data.get("info") or {}
    )
