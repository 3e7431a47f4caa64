"""Entra's UPN and object-id rules, group and query sanity, and the duplicate key."""

from __future__ import annotations

import pytest

from runner import identity
from runner.problem import Severity


@pytest.mark.parametrize(
    "upn",
    [
        "adele.vance@contoso.com",
        "o'brien@contoso.com",
        "a.b-c_d!e#f^g~h@contoso.com",
        "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "a" * 64 + "@" + "b" * 44 + ".com",
    ],
)
def test_valid_upns_are_accepted_in_lower_case(upn: str) -> None:
    """UPNs within Entra's character set and lengths pass, normalised to lower case."""
    checked = identity.check_user(upn.upper())
    assert checked.findings == ()
    assert checked.value == upn.lower()


def test_guid_is_an_object_id_in_lower_case() -> None:
    """A GUID is taken as an object id and lower-cased."""
    checked = identity.check_user("5A1B0C3E-0000-4000-8000-000000000001")
    assert checked.value == "5a1b0c3e-0000-4000-8000-000000000001"
    assert checked.ok


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a@b@contoso.com", "a UPN has exactly one @; 'a@b@contoso.com' has 2"),
        ("@contoso.com", "'@contoso.com' has nothing before the @"),
        ("adele@", "'adele@' has nothing after the @"),
        (
            "adele vance",
            "'adele vance' is neither a UPN (name@domain) nor an object id (a GUID like "
            "5a1b0c3e-0000-4000-8000-000000000001)",
        ),
        (
            "adele+news@contoso.com",
            "character '+' (U+002B) at position 6 is not allowed in a UPN: only letters, digits "
            "and ' . - _ ! # ^ ~ may surround the @",
        ),
        (
            "adele\t.vance@contoso.com",
            "character U+0009 at position 6 is not allowed in a UPN: only letters, digits and "
            "' . - _ ! # ^ ~ may surround the @",
        ),
        (
            "ａdele@contoso.com",
            "character U+FF41 (FULLWIDTH LATIN SMALL LETTER A) at position 1 is not allowed in a "
            "UPN: UPNs are ASCII only, so this is a look-alike or hidden character; retype the UPN",
        ),
    ],
)
def test_invalid_upns_cite_the_rule(value: str, message: str) -> None:
    """Each broken UPN is refused with the specific rule it breaks."""
    checked = identity.check_user(value)
    assert checked.value is None
    assert [finding.message for finding in checked.findings] == [message]


def test_non_ascii_whitespace_is_not_stripped() -> None:
    """Only ASCII whitespace is stripped; a trailing NBSP is rejected by code point."""
    checked = identity.check_user(" adele@contoso.com\u00a0")
    assert [(f.severity, f.message) for f in checked.findings] == [
        (Severity.WARNING, "surrounding whitespace removed from ' adele@contoso.com\\xa0'"),
        (
            Severity.ERROR,
            "character U+00A0 (NO-BREAK SPACE) at position 18 is not allowed in a UPN: UPNs are "
            "ASCII only, so this is a look-alike or hidden character; retype the UPN",
        ),
    ]


def test_groups_keep_their_names_but_refuse_invisible_characters() -> None:
    """Group names may be Unicode, but never hold control or invisible characters."""
    assert identity.check_group("Équipe Finance").value == "Équipe Finance"
    checked = identity.check_group("Finance\u200b")
    assert [f.message for f in checked.findings] == [
        "character U+200B (ZERO WIDTH SPACE) at position 8 is invisible or a control "
        "character; retype the value"
    ]


def test_protected_list_entries_say_what_is_empty() -> None:
    """An empty entry of a safety list names its role rather than targets."""
    checked = identity.check_user("", role="protected user")
    assert [f.message for f in checked.findings] == [
        "empty protected user: fill it in or remove it"
    ]


def test_query_wildcard_is_refused() -> None:
    """A query of `*` is not a way to say "all users"."""
    assert not identity.check_query("*").ok
    assert identity.check_query("department eq 'Sales'").value == "department eq 'Sales'"


def test_dedupe_key_ignores_case_except_for_queries() -> None:
    """UPNs and group names compare without case; query text compares exactly."""
    assert identity.dedupe_key("user", "Adele@Contoso.com") == identity.dedupe_key(
        "user", "adele@contoso.com"
    )
    assert identity.dedupe_key("query", "a eq 'X'") != identity.dedupe_key("query", "a eq 'x'")
