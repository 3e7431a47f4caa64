"""Who a target is: UPN and object-id rules, group and query sanity, duplicate keys.

Entra's UPN policy allows only ASCII letters, digits and `' . - _ ! # ^ ~` around exactly one
`@`, no `.` directly before the `@`, at most 113 characters (64 before the `@`, 48 after). So
any non-ASCII character is wrong by definition, and homoglyphs, zero-width, bidi and
fullwidth characters are rejected naming their code point. Object ids are GUIDs. Surrounding
ASCII whitespace is stripped with a warning; anything else is never "fixed" silently.
Everything here is pure: values in, normalised value and findings out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from runner.problem import Severity

UPN_MAX = 113
UPN_LOCAL_MAX = 64
UPN_DOMAIN_MAX = 48

ASCII_WHITESPACE = " \t\r\n\f\v"
_NOT_UPN_CHAR = re.compile(r"[^A-Za-z0-9'._!#^~@-]")

# The same rules as JSON-Schema patterns (the schema file carries them for editors; a test
# proves they are equal). Lengths are checked in code, with messages that cite the rule.
# They end in `(?![\s\S])`, "the very end", where `$` would also match before a final newline.
GUID_PATTERN = (
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\s\S])"
)
USER_PATTERN = (
    r"^([A-Za-z0-9'._!#^~-]*[A-Za-z0-9'_!#^~-]@[A-Za-z0-9'._!#^~-]+"
    r"|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})(?![\s\S])"
)
_GUID = re.compile(GUID_PATTERN)
_GUIDISH = re.compile(r"^[0-9A-Fa-f{}-]{8,}$")

EXAMPLE_GUID = "5a1b0c3e-0000-4000-8000-000000000001"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing wrong with (or done to) a value."""

    message: str
    severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """A value after the identity rules: normalised (None when it has errors) and findings."""

    value: str | None
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the value has no error (warnings allowed)."""
        return all(f.severity is not Severity.ERROR for f in self.findings)


def is_guid(value: str) -> bool:
    """True when `value` is a GUID (an Entra object id)."""
    return _GUID.match(value) is not None


def describe_char(char: str) -> str:
    """`U+0430 (CYRILLIC SMALL LETTER A)`, or `' ' (U+0020)` for printable ASCII."""
    code = f"U+{ord(char):04X}"
    if " " <= char <= "~":
        return f"{char!r} ({code})"
    name = unicodedata.name(char, "")
    return f"{code} ({name})" if name else code


def _strip(raw: str, findings: list[Finding]) -> str:
    value = raw.strip(ASCII_WHITESPACE)
    if value != raw and value:
        findings.append(
            Finding(
                message=f"surrounding whitespace removed from {raw!a}",
                severity=Severity.WARNING,
            )
        )
    return value


def _empty(role: str) -> Finding:
    if role == "target":
        return Finding(message="empty target: there is no implicit 'all users'; name who to act on")
    return Finding(message=f"empty {role}: fill it in or remove it")


def _wildcard() -> Finding:
    return Finding(
        message=(
            "wildcards are not allowed (there is no implicit 'all users'): "
            "list each user, or target a group or a query"
        )
    )


def _invisible(value: str) -> Finding | None:
    for index, char in enumerate(value, start=1):
        if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
            return Finding(
                message=(
                    f"character {describe_char(char)} at position {index} is invisible or a "
                    "control character; retype the value"
                )
            )
    return None


def check_user(raw: str | None, *, role: str = "target") -> Checked:
    """Check a user given by UPN or object id; normalise it to lower case."""
    if raw is None:
        return Checked(value=None, findings=(_empty(role),))
    findings: list[Finding] = []
    value = _strip(raw, findings)
    if not value:
        return Checked(value=None, findings=(_empty(role),))
    if "*" in value:
        return Checked(value=None, findings=(*findings, _wildcard()))
    for index, char in enumerate("" if value.isascii() else value, start=1):
        if not char.isascii():
            findings.append(
                Finding(
                    message=(
                        f"character {describe_char(char)} at position {index} is not allowed in "
                        "a UPN: UPNs are ASCII only, so this is a look-alike or hidden "
                        "character; retype the UPN"
                    )
                )
            )
            return Checked(value=None, findings=tuple(findings))
    if "@" not in value:
        if is_guid(value):
            return Checked(value=value.lower(), findings=tuple(findings))
        if _GUIDISH.match(value):
            message = f"{value!r} is not an object id: object ids are GUIDs like {EXAMPLE_GUID}"
        else:
            message = (
                f"{value!r} is neither a UPN (name@domain) nor an object id "
                f"(a GUID like {EXAMPLE_GUID})"
            )
        return Checked(value=None, findings=(*findings, Finding(message=message)))
    errors = _upn_errors(value)
    if errors:
        return Checked(value=None, findings=(*findings, *errors))
    return Checked(value=value.lower(), findings=tuple(findings))


def _upn_errors(value: str) -> list[Finding]:
    at_count = value.count("@")
    if at_count > 1:
        return [Finding(message=f"a UPN has exactly one @; {value!r} has {at_count}")]
    bad = _NOT_UPN_CHAR.search(value)
    if bad is not None:
        index, char = bad.start() + 1, bad.group()
        return [
            Finding(
                message=(
                    f"character {describe_char(char)} at position {index} is not allowed "
                    "in a UPN: only letters, digits and ' . - _ ! # ^ ~ may surround the @"
                )
            )
        ]
    local, domain = value.split("@")
    errors: list[Finding] = []
    if not local:
        errors.append(Finding(message=f"{value!r} has nothing before the @"))
    if not domain:
        errors.append(Finding(message=f"{value!r} has nothing after the @"))
    if local.endswith("."):
        message = f"{value!r} has a '.' directly before the @, which Entra forbids"
        errors.append(Finding(message=message))
    if len(value) > UPN_MAX:
        message = f"the UPN is {len(value)} characters long; Entra allows at most {UPN_MAX}"
        errors.append(Finding(message=message))
    if len(local) > UPN_LOCAL_MAX:
        errors.append(
            Finding(
                message=(
                    f"the part before the @ is {len(local)} characters long; "
                    f"Entra allows at most {UPN_LOCAL_MAX}"
                )
            )
        )
    if len(domain) > UPN_DOMAIN_MAX:
        errors.append(
            Finding(
                message=(
                    f"the domain after the @ is {len(domain)} characters long; "
                    f"Entra allows at most {UPN_DOMAIN_MAX}"
                )
            )
        )
    return errors


def check_object_id(raw: str | None, *, role: str = "object id") -> Checked:
    """Check an object id (a GUID); normalise it to lower case."""
    if raw is None:
        return Checked(value=None, findings=(_empty(role),))
    findings: list[Finding] = []
    value = _strip(raw, findings)
    if not value:
        return Checked(value=None, findings=(_empty(role),))
    if not is_guid(value):
        message = f"{value!a} is not an object id: object ids are GUIDs like {EXAMPLE_GUID}"
        return Checked(value=None, findings=(*findings, Finding(message=message)))
    return Checked(value=value.lower(), findings=tuple(findings))


def check_group(raw: str | None, *, role: str = "target") -> Checked:
    """Check a group given by display name or object id (ids are normalised to lower case)."""
    return _check_text(raw, role=role, lower_guid=True)


def check_query(raw: str | None, *, role: str = "target") -> Checked:
    """Check an OData filter: not empty, not a wildcard, nothing invisible."""
    return _check_text(raw, role=role, lower_guid=False)


def _check_text(raw: str | None, *, role: str, lower_guid: bool) -> Checked:
    if raw is None:
        return Checked(value=None, findings=(_empty(role),))
    findings: list[Finding] = []
    value = _strip(raw, findings)
    if not value:
        return Checked(value=None, findings=(_empty(role),))
    if "*" in value:
        return Checked(value=None, findings=(*findings, _wildcard()))
    invisible = _invisible(value)
    if invisible is not None:
        return Checked(value=None, findings=(*findings, invisible))
    if lower_guid and is_guid(value):
        value = value.lower()
    return Checked(value=value, findings=tuple(findings))


def dedupe_key(kind: str, value: str) -> str:
    """Two targets with the same key are the same target (UPNs and names ignore case)."""
    return f"{kind}:{value if kind == 'query' else value.casefold()}"
