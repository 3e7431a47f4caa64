"""The emulated Graph service: authentication, faults, throttling, routing, `$batch`, logs.

`EmulatorApp.handle_graph` serves the Graph host (Graph versions, the managed-identity
endpoint and the `/_emulator` admin API); `handle_sts` serves the HTTPS token host. Each
standalone request and each `$batch` item goes through the same pipeline:

    faults (before) -> route -> throttle -> handler -> faults (after) -> headers -> log
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from runner.emulator import routing
from runner.emulator.authz import Principal
from runner.emulator.config import EmulatorConfig, Latency
from runner.emulator.faults import Fault, FaultInjector, FaultKind
from runner.emulator.routing import Ctx
from runner.emulator.store import Store
from runner.emulator.throttle import Throttler
from runner.emulator.tokens import TokenSigner, bearer_token, principal_from_claims
from runner.emulator.wire import (
    ConnectionFault,
    GraphError,
    Request,
    Response,
    dumps,
    empty_response,
    error_response,
    json_response,
)

if TYPE_CHECKING:
    from runner.emulator.sts import TokenService

MAX_BATCH = 20
_LITERAL_KEY = re.compile(r"^/(users|groups|servicePrincipals)\('((?:[^']|'')*)'\)(/.*)?$")
_ITEM_HEADERS = {
    "content-type",
    "cache-control",
    "location",
    "retry-after",
    "x-ms-resource-unit",
    "x-ms-throttle-limit-percentage",
    "x-ms-throttle-scope",
    "x-ms-throttle-information",
    "www-authenticate",
}

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The real current time, in UTC."""
    return dt.datetime.now(dt.UTC)


def ledger_time(now: dt.datetime) -> str:
    """Ledger and request-log timestamps: ISO 8601 with microseconds, UTC."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def split_target(raw_path: str) -> tuple[str, dict[str, str]]:
    """Decode a request target into its path and its query parameters."""
    parts = urlsplit(raw_path)
    query = {key: value for key, value in parse_qsl(parts.query, keep_blank_values=True)}
    return unquote(parts.path), query


class EmulatorApp:
    """The emulated tenant's request handling, shared by the Graph and token servers."""

    def __init__(
        self,
        *,
        config: EmulatorConfig,
        store: Store,
        signer: TokenSigner,
        throttler: Throttler,
        faults: FaultInjector,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self.signer = signer
        self.throttler = throttler
        self.faults = faults
        self.clock = clock
        self.tenant_id = signer.tenant_id
        self.graph_url = ""
        self.sts_url = ""
        self.sts: TokenService | None = None
        self.consistency_delay_s = config.consistency_delay_s
        self.operation_delay_s = config.operation_delay_s
        self.on_reset: Callable[[], None] | None = None
        self.on_latency: Callable[[Latency], None] | None = None
        self._order_rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()
        # Import the route modules so that they register their handlers.
        from runner.emulator import admin, graph_directory, graph_methods, graph_users

        self._admin = admin
        del graph_directory, graph_methods, graph_users

    # -- shared helpers for handlers --------------------------------------------------------

    def roles_of(self, object_id: str) -> frozenset[str]:
        """Role template ids held directly by a user or a service principal."""
        rows = self.store.query(
            "SELECT r.template_id FROM role_members m JOIN roles r ON r.id = m.role_id "
            "WHERE m.principal_id = ?",
            (object_id,),
        )
        return frozenset(str(row["template_id"]) for row in rows)

    def record_effect(
        self, *, now: dt.datetime, app: str, user_id: str, effect: str, detail: dict[str, Any]
    ) -> None:
        """Append one applied state change to the side-effect ledger."""
        self.store.record_effect(
            time=ledger_time(now), app=app, user_id=user_id, effect=effect, detail=detail
        )

    def reset_state(self) -> None:
        """Back to the seeded tenant: no faults, full buckets, logs and ledger emptied."""
        self.faults.clear()
        self.throttler.reset()
        if self.on_reset is not None:
            self.on_reset()

    def set_latency(self, latency: Latency) -> None:
        """Change the added latency per Graph request."""
        if self.on_latency is not None:
            self.on_latency(latency)

    def settle(self, now: dt.datetime) -> None:
        """Let time-driven state advance (long-running operations finishing)."""
        for settler in routing.SETTLERS:
            settler(self, now)

    # -- entry points ---------------------------------------------------------------------

    def handle_sts(self, req: Request) -> Response:
        """A request to the HTTPS token host."""
        if self.sts is None:  # pragma: no cover - wired by the Emulator before serving
            return json_response(503, {"error": "temporarily_unavailable"})
        return self.sts.handle(req)

    def handle_graph(self, req: Request) -> Response:
        """A request to the Graph host."""
        if req.path.startswith("/_emulator"):
            return self._admin.handle(self, req)
        if req.path == "/metadata/identity/oauth2/token":
            if self.sts is None:  # pragma: no cover
                return json_response(503, {"error": "temporarily_unavailable"})
            return self.sts.managed_identity(req)
        now = self.clock()
        request_id = str(uuid.uuid4())
        client_request_id = req.header("client-request-id") or str(uuid.uuid4())
        version, _, rest = req.path.lstrip("/").partition("/")
        rest = "/" + rest
        if version not in routing.BOTH:
            err = GraphError(400, "BadRequest", f"Invalid version: {version or '(none)'}")
            response = error_response(
                err, request_id=request_id, client_request_id=client_request_id, now=now
            )
            self._log(now, "", req, response.status, None, request_id, client_request_id)
            return self._stamp(response, request_id, client_request_id)
        self.settle(now)
        try:
            principal = self._authenticate(req, now)
        except GraphError as err:
            response = error_response(
                err, request_id=request_id, client_request_id=client_request_id, now=now
            )
            self._log(now, "", req, response.status, None, request_id, client_request_id)
            return self._stamp(response, request_id, client_request_id)
        if rest == "/$batch" and req.method == "POST":
            return self._batch(req, principal, version, now, request_id, client_request_id)
        return self._item(
            req, principal, version, rest, now, request_id, client_request_id, batch_seq=None
        )

    # -- pipeline -------------------------------------------------------------------------

    def _authenticate(self, req: Request, now: dt.datetime) -> Principal:
        token = bearer_token(req.header("authorization"))
        claims = self.signer.verify(token, now=now.timestamp())
        return principal_from_claims(claims)

    def _stamp(self, response: Response, request_id: str, client_request_id: str) -> Response:
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id)
        response.headers.setdefault(
            "x-ms-ags-diagnostic",
            '{"ServerInfo":{"DataCenter":"Emulated","Slice":"E","Ring":"0",'
            '"ScaleUnit":"000","RoleInstance":"EMU","ADSiteName":"EMU"}}',
        )
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    def _log(
        self,
        now: dt.datetime,
        app_id: str,
        req: Request,
        status: int,
        batch_seq: int | None,
        request_id: str,
        client_request_id: str,
        *,
        path: str | None = None,
        write: bool = False,
    ) -> int:
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT INTO requests (time, app, method, path, status, batch, request_id, "
                "client_request_id, write) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ledger_time(now),
                    app_id,
                    req.method,
                    path if path is not None else req.raw_path,
                    status,
                    batch_seq,
                    request_id,
                    client_request_id,
                    int(write),
                ),
            )
            return int(cur.lastrowid or 0)

    def _set_log_status(self, seq: int, status: int) -> None:
        self.store.execute("UPDATE requests SET status = ? WHERE seq = ?", (status, seq))

    def _item(
        self,
        req: Request,
        principal: Principal,
        version: str,
        rest: str,
        now: dt.datetime,
        request_id: str,
        client_request_id: str,
        *,
        batch_seq: int | None,
    ) -> Response:
        in_batch = batch_seq is not None
        fault = self.faults.pick(method=req.method, path=rest, in_batch=in_batch)
        write = req.method in {"POST", "PATCH", "PUT", "DELETE"}
        response = self._execute(
            req, principal, version, rest, now, request_id, client_request_id, fault
        )
        self._stamp(response, request_id, client_request_id)
        executed_write = write and response.status < 400
        self._log(
            now,
            principal.app_id,
            req,
            response.status,
            batch_seq,
            request_id,
            client_request_id,
            write=executed_write,
        )
        return response

    def _execute(
        self,
        req: Request,
        principal: Principal,
        version: str,
        rest: str,
        now: dt.datetime,
        request_id: str,
        client_request_id: str,
        fault: Fault | None,
    ) -> Response:
        def failure(err: GraphError) -> Response:
            return error_response(
                err, request_id=request_id, client_request_id=client_request_id, now=now
            )

        in_batch = req.batch_item_id is not None
        if fault is not None:
            early = fault.before(now=now, in_batch=in_batch)
            if early is not None:
                if early.status >= 400 and early.body == b"" and fault.wants_graph_body:
                    early = self._with_error_body(early, fault, request_id, client_request_id, now)
                return early
        literal_key = False
        match = _LITERAL_KEY.match(rest)
        if match is not None:
            key = match.group(2).replace("''", "'")
            if "/" in key:
                return failure(
                    GraphError(400, "Request_BadRequest", f"Invalid object identifier '{key}'.")
                )
            rest = f"/{match.group(1)}/{key}{match.group(3) or ''}"
            literal_key = True
        try:
            found, params = routing.find(req.method, rest, version)
        except GraphError as err:
            return failure(err)
        units = routing.resource_units(found, req.query)
        decision = self.throttler.charge(
            app_id=principal.app_id,
            resource_units=units,
            writes=1 if found.write else 0,
            now=now,
            in_batch=in_batch,
        )
        if not decision.allowed:
            throttled = GraphError(
                429,
                "TooManyRequests",
                "Please retry again later.",
                headers=decision.headers,
                inner={"code": "429", "message": "Please retry after", "status": "429"},
            )
            return failure(throttled)
        ctx = Ctx(
            app=self,
            req=req,
            principal=principal,
            version=version,
            path=rest,
            now=now,
            request_id=request_id,
            literal_key=literal_key,
        )
        try:
            response = found.handler(ctx, **params)
        except GraphError as err:
            response = failure(err)
        response.headers.update(ctx.extra_headers)
        response.headers.update(decision.headers)
        response.headers["x-ms-resource-unit"] = str(units)
        if fault is not None:
            late = fault.after(response, now=now, in_batch=in_batch)
            if (
                late is not response
                and late.status >= 400
                and not late.body
                and fault.wants_graph_body
            ):
                late = self._with_error_body(late, fault, request_id, client_request_id, now)
            response = late
        return response

    def _with_error_body(
        self,
        response: Response,
        fault: Fault,
        request_id: str,
        client_request_id: str,
        now: dt.datetime,
    ) -> Response:
        err = fault.graph_error(response.status)
        body = error_response(
            err, request_id=request_id, client_request_id=client_request_id, now=now
        )
        body.headers.update(response.headers)
        body.fault = response.fault
        return body

    # -- $batch ---------------------------------------------------------------------------

    def _batch(
        self,
        req: Request,
        principal: Principal,
        version: str,
        now: dt.datetime,
        request_id: str,
        client_request_id: str,
    ) -> Response:
        def failure(status: int, code: str, message: str) -> Response:
            response = error_response(
                GraphError(status, code, message),
                request_id=request_id,
                client_request_id=client_request_id,
                now=now,
            )
            self._log(now, principal.app_id, req, status, None, request_id, client_request_id)
            return self._stamp(response, request_id, client_request_id)

        try:
            payload = json.loads(req.body) if req.body else None
        except (ValueError, UnicodeDecodeError):
            return failure(400, "BadRequest", "Invalid batch payload format.")
        items = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            return failure(400, "BadRequest", "Invalid batch payload format.")
        if len(items) > MAX_BATCH:
            return failure(
                400,
                "BadRequest",
                f"The number of batch requests ({len(items)}) exceeds the limit of {MAX_BATCH}.",
            )
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict) or not all(
                isinstance(item.get(key), str) and item.get(key) for key in ("id", "method", "url")
            ):
                return failure(400, "BadRequest", "Invalid batch payload format.")
            key = item["id"].lower()
            if key in seen:
                return failure(
                    400, "BadRequest", f"Batch request contains duplicate request id: {item['id']}."
                )
            seen.add(key)
        ids = {item["id"].lower() for item in items}
        for item in items:
            depends = item.get("dependsOn", [])
            if not isinstance(depends, list) or any(
                not isinstance(dep, str) or dep.lower() not in ids for dep in depends
            ):
                return failure(400, "BadRequest", "Invalid dependsOn value in batch request.")

        envelope_fault = self.faults.pick(method="POST", path="/$batch", in_batch=False)
        outer_seq = self._log(
            now, principal.app_id, req, 200, None, request_id, client_request_id, path=req.raw_path
        )
        if envelope_fault is not None:
            early = envelope_fault.before(now=now, in_batch=False)
            if early is not None:
                if early.status >= 400 and not early.body and envelope_fault.wants_graph_body:
                    early = self._with_error_body(
                        early, envelope_fault, request_id, client_request_id, now
                    )
                self._set_log_status(outer_seq, early.status)
                return self._stamp(early, request_id, client_request_id)

        results: dict[str, dict[str, Any]] = {}
        status_by_id: dict[str, int] = {}
        for item in items:
            item_id: str = item["id"]
            depends = [dep.lower() for dep in item.get("dependsOn", [])]
            if any(status_by_id.get(dep, 424) >= 400 for dep in depends):
                results[item_id] = {"id": item_id, "status": 424}
                status_by_id[item_id.lower()] = 424
                self._log(
                    now,
                    principal.app_id,
                    req,
                    424,
                    outer_seq,
                    str(uuid.uuid4()),
                    client_request_id,
                    path=item["url"],
                )
                continue
            response = self._batch_item(item, principal, version, now, client_request_id, outer_seq)
            status_by_id[item_id.lower()] = response.status
            entry: dict[str, Any] = {
                "id": item_id,
                "status": response.status,
                "headers": {
                    name: value
                    for name, value in response.headers.items()
                    if name.lower() in _ITEM_HEADERS
                },
            }
            if response.body:
                try:
                    entry["body"] = json.loads(response.body)
                except ValueError:
                    entry["body"] = response.body.decode("utf-8", "replace")
            results[item_id] = entry
        ordered = list(results.values())
        with self._rng_lock:
            self._order_rng.shuffle(ordered)
        response = json_response(200, {"responses": ordered})
        if envelope_fault is not None:
            response = envelope_fault.after(response, now=now, in_batch=False)
            if response.status >= 400 and not response.body and envelope_fault.wants_graph_body:
                response = self._with_error_body(
                    response, envelope_fault, request_id, client_request_id, now
                )
            self._set_log_status(outer_seq, response.status)
        return self._stamp(response, request_id, client_request_id)

    def _batch_item(
        self,
        item: Mapping[str, Any],
        principal: Principal,
        version: str,
        now: dt.datetime,
        client_request_id: str,
        outer_seq: int,
    ) -> Response:
        url = str(item["url"])
        if url.startswith(("http://", "https://")):
            parsed = urlsplit(url)
            url = parsed.path + (f"?{parsed.query}" if parsed.query else "")
            url = url.removeprefix(f"/{version}")
        if not url.startswith("/"):
            url = "/" + url
        path, query = split_target(url)
        headers = {
            str(name).lower(): str(value) for name, value in (item.get("headers") or {}).items()
        }
        method = str(item["method"]).upper()
        body_obj = item.get("body")
        body = b"" if body_obj is None else dumps(body_obj)
        request_id = str(uuid.uuid4())
        item_req = Request(
            method=method,
            path=f"/{version}{path}",
            raw_path=url,
            query=query,
            headers=headers,
            body=body,
            batch_item_id=str(item["id"]),
            batch_seq=outer_seq,
        )
        if method in {"POST", "PATCH", "PUT"} and (
            body_obj is None or "content-type" not in headers
        ):
            response = error_response(
                GraphError(
                    400,
                    "BadRequest",
                    f"Write request id : {item['id']} does not contain Content-Type header "
                    "or body.",
                ),
                request_id=request_id,
                client_request_id=client_request_id,
                now=now,
            )
            self._log(
                now, principal.app_id, item_req, 400, outer_seq, request_id, client_request_id
            )
            return response
        return self._item(
            item_req,
            principal,
            version,
            path,
            now,
            request_id,
            client_request_id,
            batch_seq=outer_seq,
        )


def graph_request_from_http(
    method: str, target: str, headers: Mapping[str, str], body: bytes
) -> Request:
    """Build a `Request` from what the HTTP server read off the socket."""
    path, query = split_target(target)
    return Request(
        method=method.upper(),
        path=path,
        raw_path=target,
        query=query,
        headers={name.lower(): value for name, value in headers.items()},
        body=body,
    )


__all__ = [
    "ConnectionFault",
    "EmulatorApp",
    "FaultKind",
    "empty_response",
    "graph_request_from_http",
]
