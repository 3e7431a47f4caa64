"""Redaction: registered secrets and credential-shaped values never leave the process."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.secrets import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PASSWORD_SYMBOLS,
    REDACTED,
    generate_password,
    redact,
    register_secret,
)


def test_registered_secret_is_replaced_anywhere() -> None:
    """A secret learned at run time is removed from any text."""
    register_secret("Zx9!canary-password-42")
    assert redact("set Zx9!canary-password-42 for bob") == f"set {REDACTED} for bob"


def test_jwt_and_bearer_values_are_replaced() -> None:
    """Tokens are removed even if nobody registered them."""
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eHh4eHh4In0.c2lnbmF0dXJlLXZhbHVl"
    assert token not in redact(f"Authorization: Bearer {token}")
    assert redact("Authorization: Bearer abcdefghijklmnop") == f"Authorization: Bearer {REDACTED}"


def test_credential_keys_are_replaced() -> None:
    """`password: x`, `"client_secret": "x"` and `access_token=x` lose their values."""
    text = 'password: hunter2 "client_secret": "abc" access_token=xyz'
    assert redact(text) == (
        f'password: {REDACTED} "client_secret": "{REDACTED}" access_token={REDACTED}'
    )


def test_action_names_ending_in_password_are_not_mangled() -> None:
    """`reset_password: expected ...` is ordinary output, not a credential."""
    text = "plan.csv:3: column reset_password: expected true or false"
    assert redact(text) == text


# --- generated passwords ------------------------------------------------------------------

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@settings(max_examples=300, deadline=None)
@given(length=st.integers(min_value=PASSWORD_MIN_LENGTH, max_value=PASSWORD_MAX_LENGTH))
def test_generated_password_meets_entra_rules(length: int) -> None:
    """Any length 8-256: ASCII, four classes, safe symbols, alnum first, registered."""
    password = generate_password(length)
    assert len(password) == length
    assert password.isascii()
    assert any(c.islower() for c in password)
    assert any(c.isupper() for c in password)
    assert any(c.isdigit() for c in password)
    assert any(c in PASSWORD_SYMBOLS for c in password)
    assert set(password) <= set(string.ascii_letters + string.digits + PASSWORD_SYMBOLS)
    assert not password.startswith(FORMULA_PREFIXES)
    assert password[0].isalnum()
    assert redact(f"set to {password}.") == f"set to {REDACTED}."


def test_password_symbols_survive_csv_and_shells() -> None:
    """The symbol set holds nothing a CSV cell, a shell or a formula would treat specially."""
    assert not set(PASSWORD_SYMBOLS) & set(",;\"'`\\$!&|<>*? \t\r\n=+@")


@pytest.mark.parametrize("length", [0, 7, 257])
def test_password_length_outside_entra_rules_is_refused(length: int) -> None:
    """Entra accepts 8 to 256 characters; anything else is a caller error."""
    with pytest.raises(ValueError, match="Entra accepts 8 to 256 characters"):
        generate_password(length)


def test_generated_passwords_do_not_repeat() -> None:
    """2,000 draws of the shortest length give 2,000 different passwords."""
    assert len({generate_password(8) for _ in range(2000)}) == 2000


def test_a_secret_inside_a_longer_one_never_leaves_a_tail() -> None:
    """The longer secret is replaced first, whatever the order they were registered in."""
    register_secret("Qm7%tail")
    register_secret("Qm7%tail-and-more-9")
    assert redact("a Qm7%tail-and-more-9 b Qm7%tail") == f"a {REDACTED} b {REDACTED}"
