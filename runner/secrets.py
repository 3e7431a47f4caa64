"""Secrets: redaction of tokens, passwords and access passes wherever text leaves the process,
and the generation of temporary passwords (`generate_password`). The run's secrets file is
`runner/secretfile.py`.

Every secret the process learns (a client secret read from the environment, a token, a
generated password, a temporary access pass) is registered here the moment it is known, and
`redact` removes registered values and anything shaped like a credential from any text
before it reaches a terminal, a log, a report, the journal or a traceback file.
"""

from __future__ import annotations

import bisect
import re
import secrets
import threading

REDACTED = "[REDACTED]"

_lock = threading.Lock()
_known: set[str] = set()
_longest_first: list[str] = []  # _known, kept sorted by length (longest first) as it grows

# Shapes of credentials that must never be printed even if nobody registered them.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # A JWT (header.payload.signature, base64url, header starting with {" → eyJ).
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    # Authorization header values.
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # key=value and "key": "value" for credential-named keys.
    re.compile(
        r"(?i)((?<![A-Za-z0-9_])(?:client_secret|client_assertion|password|newPassword"
        r"|temporaryAccessPass|access_token|refresh_token|id_token|passphrase)"
        r"\"?\s*[:=]\s*\"?)([^\"&\s,}]+)"
    ),
)

_MIN_SECRET_LENGTH = 4


def _longest(value: str) -> int:
    return -len(value)


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` removes it from any text from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            if value not in _known:
                _known.add(value)
                bisect.insort(_longest_first, value, key=_longest)


def redact(text: str) -> str:
    """Return `text` with every registered secret and credential-shaped value replaced."""
    with _lock:
        known = list(_longest_first)  # a run can register 100,000 passwords: never re-sort
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: m.group(1) + REDACTED, text)
    return _PATTERNS[2].sub(lambda m: m.group(1) + REDACTED, text)


# --- generated passwords ------------------------------------------------------------------

PASSWORD_MIN_LENGTH = 8  # Entra's rules: 8 to 256 characters, ASCII only
PASSWORD_MAX_LENGTH = 256
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"
# Symbols Entra accepts that survive a CSV cell, a terminal and a copy-paste into a shell or
# a portal: no quotes, comma, backslash, space, `$`, `!`, `&`, `;`, `|`, `<`, `>`, `*`, `?`.
PASSWORD_SYMBOLS = "#%-.:_"  # noqa: S105 - an alphabet, not a password
_FIRST = _LOWER + _UPPER + _DIGITS  # never a formula prefix (= + - @ tab CR) in a spreadsheet
_ALPHABET = _FIRST + PASSWORD_SYMBOLS
_CLASSES = (frozenset(_LOWER), frozenset(_UPPER), frozenset(_DIGITS), frozenset(PASSWORD_SYMBOLS))


def generate_password(length: int = 20) -> str:
    """A temporary password from the OS's cryptographic RNG, registered for redaction.

    Entra's complexity rules with margin: ASCII, `length` between 8 and 256, all four
    classes (lower, upper, digit, symbol) where Entra asks for three. The first character is
    a letter or digit, so the value is never read as a spreadsheet formula. Candidates that
    miss a class are drawn again (rejection keeps every valid password equally likely).
    """
    if not PASSWORD_MIN_LENGTH <= length <= PASSWORD_MAX_LENGTH:
        msg = (
            f"password length {length}: Entra accepts {PASSWORD_MIN_LENGTH} to "
            f"{PASSWORD_MAX_LENGTH} characters"
        )
        raise ValueError(msg)
    while True:
        chars = [secrets.choice(_FIRST)]
        chars.extend(secrets.choice(_ALPHABET) for _ in range(length - 1))
        if all(any(c in cls for c in chars) for cls in _CLASSES):
            password = "".join(chars)
            register_secret(password)
            return password
