"""Redaction: registered secrets and credential-shaped values never leave the process."""

from __future__ import annotations

from runner.secrets import REDACTED, redact, register_secret


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
