"""The admin API under `/_emulator/` (never under Graph paths), for tests and benchmarks.

    GET    /_emulator/ledger?since=SEQ&user_id=ID&effect=NAME   applied state changes
    GET    /_emulator/requests?since=SEQ                        every request and batch item
    GET    /_emulator/faults      POST /_emulator/faults      DELETE /_emulator/faults
    GET    /_emulator/state       PATCH /_emulator/config     POST /_emulator/reset
    GET    /_emulator/users/{id}  PATCH /_emulator/users/{id} DELETE /_emulator/users/{id}
    POST   /_emulator/users                                    create a user
    POST   /_emulator/users/{id}/methods                       register a method
    POST   /_emulator/roles/{role}/members  DELETE /_emulator/roles/{role}/members/{id}
    POST   /_emulator/device/approve        POST /_emulator/device/deny

Changes made here happen "behind the runner's back" (drift); they are not in the ledger,
which records only what Graph calls applied.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.emulator.authz import ROLE_BY_NAME
from runner.emulator.config import Latency
from runner.emulator.faults import FaultRuleError
from runner.emulator.wire import PLAIN_JSON, Request, Response, dumps, iso

if TYPE_CHECKING:
    from runner.emulator.app import EmulatorApp

# Admin-API property names → users table columns (with a converter).
_USER_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "userPrincipalName": ("upn", str),
    "displayName": ("display_name", str),
    "accountEnabled": ("account_enabled", lambda v: int(bool(v))),
    "userType": ("user_type", str),
    "onPremisesSyncEnabled": ("synced", lambda v: int(bool(v))),
    "department": ("department", str),
    "jobTitle": ("job_title", str),
    "mail": ("mail", str),
    "perUserMfaState": ("per_user_mfa", str),
    "userPreferredMethodForSecondaryAuthentication": ("preferred_method", lambda v: v),
    "lastPasswordChangeDateTime": ("last_password_change", str),
    "signInSessionsValidFromDateTime": ("sessions_valid_from", str),
}
_METHOD_KINDS = {
    "phone",
    "email",
    "microsoftAuthenticator",
    "fido2",
    "softwareOath",
    "hardwareOath",
    "temporaryAccessPass",
    "windowsHelloForBusiness",
    "platformCredential",
}


def _reply(status: int, obj: Any = None) -> Response:
    if obj is None:
        return Response(status=status)
    return Response(status=status, headers={"Content-Type": PLAIN_JSON}, body=dumps(obj))


def _problem(status: int, message: str) -> Response:
    return _reply(status, {"error": message})


def _body(req: Request) -> Any:
    if not req.body:
        return {}
    return json.loads(req.body)


def handle(app: EmulatorApp, req: Request) -> Response:
    """Serve one admin request."""
    path = req.path.removeprefix("/_emulator").rstrip("/") or "/"
    method = req.method
    try:
        body = _body(req)
    except ValueError:
        return _problem(400, "body is not JSON")
    now = app.clock()
    app.settle(now)
    store = app.store
    if path == "/ledger" and method == "GET":
        rows = store.ledger(since=int(req.query.get("since", 0)))
        if "user_id" in req.query:
            rows = [row for row in rows if row["user_id"] == req.query["user_id"]]
        if "effect" in req.query:
            rows = [row for row in rows if row["effect"] == req.query["effect"]]
        return _reply(200, {"value": rows})
    if path == "/requests" and method == "GET":
        rows = store.query(
            "SELECT seq, time, app, method, path, status, batch FROM requests WHERE seq > ? "
            "ORDER BY seq",
            (int(req.query.get("since", 0)),),
        )
        return _reply(200, {"value": rows})
    if path == "/faults":
        if method == "GET":
            return _reply(200, {"rules": app.faults.rules()})
        if method == "DELETE":
            app.faults.clear()
            return _reply(204)
        if method == "POST":
            raw = body.get("rules", body) if isinstance(body, dict) else body
            rules = raw if isinstance(raw, list) else [raw]
            try:
                added = app.faults.add(rules)
            except FaultRuleError as exc:
                return _problem(400, str(exc))
            return _reply(201, {"rules": [rule.as_json() for rule in added]})
    if path == "/state" and method == "GET":
        config = app.config
        return _reply(
            200,
            {
                "tenant_id": app.tenant_id,
                "users": int(store.meta("users") or 0),
                "seed": int(store.meta("seed") or 0),
                "time_scale": config.time_scale,
                "limits": config.limits.as_json(),
                "throttle": app.throttler.enabled,
                "throttled": app.throttler.throttled,
                "consistency_delay_s": app.consistency_delay_s,
                "operation_delay_s": app.operation_delay_s,
            },
        )
    if path == "/config" and method == "PATCH":
        return _configure(app, body)
    if path == "/reset" and method == "POST":
        app.reset_state()
        return _reply(204)
    if path == "/device/approve" and method == "POST" and app.sts is not None:
        return app.sts.admin_device(body, approve=True)
    if path == "/device/deny" and method == "POST" and app.sts is not None:
        return app.sts.admin_device(body, approve=False)
    if path == "/users" and method == "POST":
        return _create_user(app, body)
    match = re.fullmatch(r"/users/([^/]+)(/methods)?", path)
    if match is not None:
        user = store.user(match.group(1))
        if user is None:
            return _problem(404, f"no user {match.group(1)}")
        if match.group(2):
            if method == "POST":
                return _add_method(app, user, body)
            return _problem(405, "use POST")
        if method == "GET":
            methods = store.query("SELECT * FROM methods WHERE user_id = ?", (user["id"],))
            return _reply(200, {"user": user, "methods": methods})
        if method == "PATCH":
            return _patch_user(app, user, body)
        if method == "DELETE":
            with store.transaction() as db:
                db.execute("DELETE FROM users WHERE id = ?", (user["id"],))
                db.execute("DELETE FROM methods WHERE user_id = ?", (user["id"],))
                db.execute("DELETE FROM group_members WHERE member_id = ?", (user["id"],))
                db.execute("DELETE FROM role_members WHERE principal_id = ?", (user["id"],))
            return _reply(204)
    match = re.fullmatch(r"/roles/([^/]+)/members(?:/([^/]+))?", path)
    if match is not None:
        return _role_members(app, match.group(1), match.group(2), method, body)
    return _problem(404, f"no admin route {method} {req.path}")


def _configure(app: EmulatorApp, body: dict[str, Any]) -> Response:
    if "throttle" in body:
        app.throttler.enabled = bool(body["throttle"])
    if "consistency_delay_s" in body:
        app.consistency_delay_s = float(body["consistency_delay_s"])
    if "operation_delay_s" in body:
        app.operation_delay_s = float(body["operation_delay_s"])
    if "latency_ms" in body:
        try:
            app.set_latency(Latency.parse(str(body["latency_ms"])))
        except ValueError as exc:
            return _problem(400, str(exc))
    return _reply(204)


def _patch_user(app: EmulatorApp, user: dict[str, Any], body: dict[str, Any]) -> Response:
    columns: dict[str, Any] = {}
    for name, value in body.items():
        if name not in _USER_FIELDS:
            return _problem(400, f"unknown user field {name!r}; known: {sorted(_USER_FIELDS)}")
        column, convert = _USER_FIELDS[name]
        columns[column] = convert(value)
    app.store.update_user(str(user["id"]), **columns)
    return _reply(204)


def _create_user(app: EmulatorApp, body: dict[str, Any]) -> Response:
    upn = body.get("userPrincipalName")
    if not isinstance(upn, str) or "@" not in upn:
        return _problem(400, "userPrincipalName is required")
    if app.store.user(upn) is not None:
        return _problem(409, f"{upn} exists")
    user_id = str(body.get("id") or uuid.uuid4())
    now = iso(app.clock())
    app.store.execute(
        "INSERT INTO users (id, upn, display_name, mail, user_type, account_enabled, synced, "
        "created, last_password_change, sessions_valid_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            user_id,
            upn,
            str(body.get("displayName") or upn.split("@")[0]),
            upn,
            str(body.get("userType", "Member")),
            int(bool(body.get("accountEnabled", True))),
            int(bool(body.get("onPremisesSyncEnabled", False))),
            now,
            now,
            now,
        ),
    )
    return _reply(201, {"id": user_id, "userPrincipalName": upn})


def _add_method(app: EmulatorApp, user: dict[str, Any], body: dict[str, Any]) -> Response:
    kind = body.get("kind")
    if kind not in _METHOD_KINDS:
        return _problem(400, f"kind must be one of {sorted(_METHOD_KINDS)}")
    method_id = str(body.get("id") or uuid.uuid4())
    data = {key: value for key, value in body.items() if key not in {"kind", "id"}}
    app.store.execute(
        "INSERT OR REPLACE INTO methods (user_id, id, kind, created, data, deleted_at) "
        "VALUES (?, ?, ?, ?, ?, NULL)",
        (user["id"], method_id, kind, iso(app.clock()), json.dumps(data)),
    )
    return _reply(201, {"id": method_id, "kind": kind})


def _role_members(
    app: EmulatorApp, role_key: str, member: str | None, method: str, body: dict[str, Any]
) -> Response:
    template = ROLE_BY_NAME.get(role_key, role_key)
    role = app.store.query_one(
        "SELECT id FROM roles WHERE template_id = ? OR id = ?", (template, role_key)
    )
    if role is None:
        return _problem(404, f"no role {role_key}")
    if method == "POST" and member is None:
        principal = str(body.get("id", ""))
        kind = str(body.get("type", "user"))
        app.store.execute(
            "INSERT OR IGNORE INTO role_members (role_id, principal_id, principal_type) "
            "VALUES (?, ?, ?)",
            (role["id"], principal, kind),
        )
        return _reply(204)
    if method == "DELETE" and member is not None:
        app.store.execute(
            "DELETE FROM role_members WHERE role_id = ? AND principal_id = ?", (role["id"], member)
        )
        return _reply(204)
    return _problem(405, "POST .../members or DELETE .../members/{id}")
