"""Secrets: redaction of tokens, passwords and access passes wherever text leaves the process.

Every secret the process learns (a client secret read from the environment, a token, a
generated password, a temporary access pass) is registered here the moment it is known, and
`redact` removes registered values and anything shaped like a credential from any text
before it reaches a terminal, a log, a report, the journal or a traceback file.
"""

from __future__ import annotations

import re
import threading

REDACTED = "[REDACTED]"

_lock = threading.Lock()
_known: set[str] = set()

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


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` removes it from any text from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Return `text` with every registered secret and credential-shaped value replaced."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: m.group(1) + REDACTED, text)
    return _PATTERNS[2].sub(lambda m: m.group(1) + REDACTED, text)
