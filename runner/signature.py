"""SSH signatures over a plan's digest, made and checked by `ssh-keygen -Y` as git does.

The signed message is the digest text (`sha256:<hex>`, ASCII, no newline) in the namespace
`entra-bulk-plan`, so a reviewer can also sign by hand:

    printf %s 'sha256:…' | ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n entra-bulk-plan

ssh-keygen runs with a list of arguments (never a shell). Without a terminal it runs in a
new session with stdin closed, so a passphrase prompt cannot block: a locked key fails at
once with a message that says how to use ssh-agent instead.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import subprocess
import tempfile
from pathlib import Path

from runner.errors import InputError

NAMESPACE = "entra-bulk-plan"
SIGN_TIMEOUT = 300.0  # a person may be typing a passphrase
VERIFY_TIMEOUT = 30.0
_ARMOUR = "-----BEGIN SSH SIGNATURE-----"
_MAGIC = b"SSHSIG"
_LENGTH = 4  # an SSH string's length prefix
_HEADER = len(_MAGIC) + 4  # magic and version, then the public key string
_PROMPT = re.compile(r"^Enter passphrase[^:]*: ")  # the prompt that precedes the complaint


def signature_key(signature: str) -> tuple[str, str]:
    """The signing key's type and `SHA256:` fingerprint, read from an SSH signature.

    ValueError when `signature` is not an armoured SSHSIG signature.
    """
    lines = [line.strip() for line in signature.strip().splitlines()]
    if len(lines) < 3 or lines[0] != _ARMOUR:
        msg = f"not an SSH signature (no {_ARMOUR} armour)"
        raise ValueError(msg)
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        msg = "not an SSH signature (invalid base64)"
        raise ValueError(msg) from None
    if not blob.startswith(_MAGIC) or len(blob) < _HEADER + _LENGTH:
        msg = "not an SSH signature (no SSHSIG magic)"
        raise ValueError(msg)
    (size,) = struct.unpack(">I", blob[_HEADER : _HEADER + _LENGTH])
    public = blob[_HEADER + _LENGTH : _HEADER + _LENGTH + size]
    if len(public) != size or size < _LENGTH:
        msg = "not an SSH signature (truncated public key)"
        raise ValueError(msg)
    (type_size,) = struct.unpack(">I", public[:_LENGTH])
    key_type = public[_LENGTH : _LENGTH + type_size].decode("ascii", "replace")
    fingerprint = base64.b64encode(hashlib.sha256(public).digest()).decode("ascii").rstrip("=")
    return key_type, "SHA256:" + fingerprint


def _ssh_keygen(
    args: list[str], *, program: str, timeout: float, stdin: bytes | None, interactive: bool
) -> subprocess.CompletedProcess[bytes]:
    """Run ssh-keygen; InputError when it is missing or does not finish."""
    env = dict(os.environ)
    if not interactive:
        env["SSH_ASKPASS_REQUIRE"] = "never"
    try:
        return subprocess.run(
            [program, *args],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            env=env,
            # No controlling terminal: ssh-keygen cannot prompt, so a locked key fails at once.
            start_new_session=not interactive,
        )
    except FileNotFoundError:
        msg = f"{program} was not found: SSH signatures need OpenSSH 8.1 or later (ssh-keygen -Y)"
        raise InputError(msg, hint="install OpenSSH's client tools, then try again") from None
    except subprocess.TimeoutExpired:
        msg = f"{program} did not finish within {timeout:.0f} seconds"
        raise InputError(msg) from None


def _detail(result: subprocess.CompletedProcess[bytes]) -> str:
    """ssh-keygen's last line of complaint (stderr, else stdout), without progress lines."""
    for stream in (result.stderr, result.stdout):
        text = stream.decode("utf-8", "replace")
        lines = [_PROMPT.sub("", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith(("Signing ", "Write "))]
        if lines:
            return lines[-1]
    return f"exit status {result.returncode}"


def sign(digest: str, *, key: Path, program: str = "ssh-keygen", interactive: bool = False) -> str:
    """An armoured SSH signature over the digest text; InputError when it cannot be made.

    `key` is a private key file, or a public key whose private key ssh-agent holds. With
    `interactive`, ssh-keygen may ask for the key's passphrase on the terminal.
    """
    if not key.is_file():
        msg = f"{key}: no such key file"
        raise InputError(msg, hint="give --sign-with a private key, or the .pub of an agent key")
    with tempfile.TemporaryDirectory(prefix="entra-bulk-sign-") as folder:
        message = Path(folder) / "digest"
        message.write_bytes(digest.encode("ascii"))
        result = _ssh_keygen(
            ["-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(message)],
            program=program,
            timeout=SIGN_TIMEOUT,
            stdin=None,
            interactive=interactive,
        )
        signature = Path(folder) / "digest.sig"
        if result.returncode == 0 and signature.is_file():
            return signature.read_text(encoding="ascii")
    raise InputError(_sign_failure(key, _detail(result), program=program))


def _sign_failure(key: Path, detail: str, *, program: str) -> str:
    lowered = detail.lower()
    if "passphrase" in lowered:
        return (
            f"{key}: the key's passphrase was not given or is wrong ({detail}): run at a "
            f"terminal to type it, or load the key into ssh-agent (ssh-add {key}) and pass "
            f"--sign-with {key}.pub"
        )
    if "no private key found" in lowered or "agent" in lowered:
        return (
            f"{key}: ssh-agent does not hold this key's private key ({detail}): run ssh-add "
            "with the private key, or pass the private key file to --sign-with"
        )
    if "unknown option" in lowered or "illegal option" in lowered:
        return f"{program} cannot sign ({detail}): SSH signatures need OpenSSH 8.1 or later"
    return f"{key}: {program} could not sign with this key ({detail})"


def verify(
    digest: str,
    signature: str,
    *,
    principal: str,
    allowed_signers: Path,
    program: str = "ssh-keygen",
    timeout: float = VERIFY_TIMEOUT,
) -> str | None:
    """None when `signature` is `principal`'s over `digest` by a key in `allowed_signers`.

    Otherwise why not, as a sentence fragment (ssh-keygen's own words in parentheses).
    """
    if not allowed_signers.is_file():
        return f"the allowed_signers file {allowed_signers} does not exist"
    with tempfile.TemporaryDirectory(prefix="entra-bulk-verify-") as folder:
        path = Path(folder) / "approval.sig"
        path.write_text(signature, encoding="ascii", errors="replace")
        try:
            arguments = ["-Y", "verify", "-f", str(allowed_signers), "-I", principal]
            result = _ssh_keygen(
                [*arguments, "-n", NAMESPACE, "-s", str(path)],
                program=program,
                timeout=timeout,
                stdin=digest.encode("ascii", "replace"),
                interactive=False,
            )
        except InputError as exc:
            return exc.message
    if result.returncode == 0:
        return None
    return (
        f"the signature does not verify for principal {principal} in {allowed_signers} "
        f"({_detail(result)})"
    )
