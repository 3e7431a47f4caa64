"""Helpers for the token-host tests: msal pointed at an emulated tenant, and token checks."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import jwt
import msal
import requests

from runner.emulator import Emulator

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


def session(emu: Emulator) -> requests.Session:
    """The `http_client` msal needs for the emulator: its CA, and no environment CA bundle."""
    http = requests.Session()
    http.verify = str(emu.info["ca_file"])
    http.trust_env = False
    return http


def confidential(
    emu: Emulator, credential: Any, *, name: str = "entra-bulk-admin", client_id: str = ""
) -> Any:
    """A fresh `msal.ConfidentialClientApplication` on the emulated tenant."""
    return msal.ConfidentialClientApplication(
        client_id or emu.app_entry(name)["client_id"],
        client_credential=credential,
        authority=emu.info["authority"],
        instance_discovery=False,
        http_client=session(emu),
    )


def public(
    emu: Emulator, *, name: str = "entra-bulk-cli", http: requests.Session | None = None
) -> Any:
    """A fresh `msal.PublicClientApplication` on the emulated tenant."""
    return msal.PublicClientApplication(
        emu.app_entry(name)["client_id"],
        authority=emu.info["authority"],
        instance_discovery=False,
        http_client=http or session(emu),
    )


def claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the tests check what they contain)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def assert_graph_accepts(emu: Emulator, token: str) -> None:
    """Graph's own verifier takes the token and `GET /v1.0/organization` answers it (200, or
    403 for a permission it lacks, never 401), while the same token with a broken signature
    gets 401."""
    assert emu.app is not None
    emu.app.signer.verify(token, now=time.time())
    url = f"{emu.graph_url}/v1.0/organization"
    good = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    # 403 would still mean "authenticated" (a permission the token lacks), never 401.
    assert good.status_code in {200, 403}, good.text
    if good.status_code == 200:
        assert good.json()["value"][0]["id"] == emu.tenant_id
    head, body, _signature = token.split(".")
    forged = f"{head}.{body}.{'A' * 342}"
    bad = httpx.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    assert bad.status_code == 401


def decide_later(
    emu: Emulator, user_code: str, *, user: str | None = None, delay_s: float = 0.3
) -> tuple[threading.Thread, list[int]]:
    """Approve (with `user`) or deny (without) a device code from another thread, as a person
    would while the application polls; the admin API's status lands in the returned list."""
    statuses: list[int] = []

    def decide() -> None:
        time.sleep(delay_s)
        action = "approve" if user is not None else "deny"
        body: dict[str, str] = {"user_code": user_code}
        if user is not None:
            body["user"] = user
        response = httpx.post(f"{emu.admin_url}/device/{action}", json=body, timeout=10)
        statuses.append(response.status_code)

    thread = threading.Thread(target=decide, daemon=True)
    thread.start()
    return thread, statuses
