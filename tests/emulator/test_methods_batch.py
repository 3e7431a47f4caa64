"""Every authentication-methods operation inside `$batch`, and no secret in the logs."""

from __future__ import annotations

import time
from typing import Any

import httpx

from runner.emulator import Emulator
from tests.emulator.methods_support import (
    AUTHENTICATOR,
    EMAIL,
    HARDWARE_OATH,
    MOBILE_ID,
    PASSWORD_ID,
    PHONE,
    app_client,
    effects,
    make_user,
    user_client,
)

JSON = {"Content-Type": "application/json"}


def _batch(caller: httpx.Client, requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    response = caller.post("/$batch", json={"requests": requests})
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["responses"]}


def test_reads_deletes_and_tap_in_a_batch(graph: httpx.Client, admin: httpx.Client) -> None:
    """List, get, delete (incl. the default-method 400) and TAP create work as batch items."""
    user_id = make_user(admin, [AUTHENTICATOR, PHONE, EMAIL], preferred="push")
    base = f"/users/{user_id}/authentication"
    default = f"{base}/microsoftAuthenticatorMethods/{AUTHENTICATOR['id']}"
    items = _batch(
        graph,
        [
            {"id": "list", "method": "GET", "url": f"{base}/methods"},
            {"id": "phones", "method": "GET", "url": f"{base}/phoneMethods/{MOBILE_ID}"},
            {"id": "default", "method": "DELETE", "url": default},
            {"id": "email", "method": "DELETE", "url": f"{base}/emailMethods/{EMAIL['id']}"},
            {"id": "again", "method": "DELETE", "url": f"{base}/emailMethods/{EMAIL['id']}"},
            {
                "id": "tap",
                "method": "POST",
                "url": f"{base}/temporaryAccessPassMethods",
                "headers": JSON,
                "body": {"lifetimeInMinutes": 30},
            },
        ],
    )
    assert {key: item["status"] for key, item in items.items()} == {
        "list": 200,
        "phones": 200,
        "default": 400,
        "email": 204,
        "again": 404,
        "tap": 201,
    }
    assert len(items["list"]["body"]["value"]) == 4
    assert items["phones"]["body"]["phoneNumber"] == "+1 4255550123"
    error = items["default"]["body"]["error"]
    assert error["code"] == "badRequest"
    assert error["innerError"]["message"] == error["message"]
    assert "body" not in items["email"]
    assert items["tap"]["body"]["lifetimeInMinutes"] == 30
    assert len(items["tap"]["body"]["temporaryAccessPass"]) == 8
    assert items["tap"]["headers"]["Content-Type"].startswith("application/json")
    assert [effect for effect, _ in effects(admin, user_id)] == ["method_deleted", "tap_created"]


def test_beta_states_and_hardware_oath_in_a_batch(emulator: Emulator, admin: httpx.Client) -> None:
    """requirements, signInPreferences and hardware OATH deletion work in a beta batch."""
    user_id = make_user(admin, [AUTHENTICATOR, PHONE, HARDWARE_OATH], preferred="push")
    base = f"/users/{user_id}/authentication"
    with app_client(emulator, "beta") as beta:
        items = _batch(
            beta,
            [
                {
                    "id": "1",
                    "method": "PATCH",
                    "url": f"{base}/requirements",
                    "headers": JSON,
                    "body": {"perUserMfaState": "enforced"},
                },
                {"id": "2", "method": "GET", "url": f"{base}/requirements", "dependsOn": ["1"]},
                {
                    "id": "3",
                    "method": "PATCH",
                    "url": f"{base}/signInPreferences",
                    "headers": JSON,
                    "body": {"userPreferredMethodForSecondaryAuthentication": "sms"},
                },
                {
                    "id": "4",
                    "method": "GET",
                    "url": f"{base}/signInPreferences",
                    "dependsOn": ["3"],
                },
                {
                    "id": "5",
                    "method": "DELETE",
                    "url": f"{base}/hardwareOathMethods/{HARDWARE_OATH['id']}",
                },
            ],
        )
    assert {key: item["status"] for key, item in items.items()} == {
        "1": 204,
        "2": 200,
        "3": 204,
        "4": 200,
        "5": 204,
    }
    assert items["2"]["body"]["perUserMfaState"] == "enforced"
    assert items["4"]["body"]["userPreferredMethodForSecondaryAuthentication"] == "sms"
    assert [effect for effect, _ in effects(admin, user_id)] == [
        "per_user_mfa_set",
        "default_method_changed",
        "method_deleted",
    ]


def test_reset_and_polling_in_a_batch(emulator: Emulator, admin: httpx.Client) -> None:
    """resetPassword in a batch is a 202 item with Location; the operation polls in a batch."""
    assert admin.patch("/config", json={"operation_delay_s": 0.3}).status_code == 204
    user_id = make_user(admin)
    reset_url = f"/users/{user_id}/authentication/methods/{PASSWORD_ID}/resetPassword"
    with user_client(emulator, "pa.admin@contoso.com") as paa:
        items = _batch(
            paa,
            [
                {
                    "id": "reset",
                    "method": "POST",
                    "url": reset_url,
                    "headers": JSON,
                    "body": {"newPassword": "Batch-Pa55word"},
                },
                {"id": "bare", "method": "POST", "url": reset_url},
            ],
        )
        assert items["reset"]["status"] == 202
        assert items["reset"]["body"] == {}
        assert items["reset"]["headers"]["Retry-After"] == "1"
        assert items["bare"]["status"] == 400
        location = items["reset"]["headers"]["Location"]
        poll_url = location.split("/v1.0", 1)[1]
        first = _batch(paa, [{"id": "p", "method": "GET", "url": poll_url}])["p"]
        assert first["body"]["status"] == "running"
        time.sleep(0.4)
        done = _batch(paa, [{"id": "p", "method": "GET", "url": poll_url}])["p"]
    assert done["status"] == 200
    assert done["body"]["status"] == "succeeded"
    assert [effect for effect, _ in effects(admin, user_id)] == ["password_reset"]


def test_no_secret_reaches_the_ledger_or_request_log(
    emulator: Emulator, admin: httpx.Client
) -> None:
    """Passes and passwords (given, generated, weak) never appear in ledger or request log."""
    assert admin.patch("/config", json={"operation_delay_s": 0}).status_code == 204
    user_id = make_user(admin)
    secrets_seen: list[str] = ["Given-Pa55word-1", "weakpassword"]
    reset_url = f"/users/{user_id}/authentication/methods/{PASSWORD_ID}/resetPassword"
    tap_url = f"/users/{user_id}/authentication/temporaryAccessPassMethods"
    with user_client(emulator, "pa.admin@contoso.com") as paa:
        assert paa.post(reset_url, json={"newPassword": secrets_seen[0]}).status_code == 202
        weak = paa.post(reset_url, json={"newPassword": secrets_seen[1]})
        assert weak.status_code == 400
        assert secrets_seen[1] not in weak.text
        secrets_seen.append(paa.post(reset_url, json={}).json()["newPassword"])
        secrets_seen.append(paa.post(tap_url, json={}).json()["temporaryAccessPass"])
        items = _batch(
            paa,
            [
                {"id": "r", "method": "POST", "url": reset_url, "headers": JSON, "body": {}},
                {"id": "t", "method": "POST", "url": tap_url, "headers": JSON, "body": {}},
            ],
        )
        secrets_seen.append(items["r"]["body"]["newPassword"])
        secrets_seen.append(items["t"]["body"]["temporaryAccessPass"])
        paa.get(f"/users/{user_id}/authentication/methods")
    ledger_text = admin.get("/ledger").text
    requests_text = admin.get("/requests").text
    state_text = admin.get(f"/users/{user_id}").text
    assert "password_reset" in ledger_text
    assert "tap_created" in ledger_text
    assert "resetPassword" in requests_text
    for secret in secrets_seen:
        assert secret not in ledger_text, secret
        assert secret not in requests_text, secret
        assert secret not in state_text, secret
