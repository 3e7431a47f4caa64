"""Fault injection: seeded rules that make the emulated tenant misbehave on purpose.

A rule names a path pattern (a glob over the path after the version, `*` within a segment and
`**` across segments, or a regular expression starting with `^`), a method (or `*`), a fault
kind, and either a `rate` (probability, drawn from the rule's own seeded generator) or a
`count` (the first N matching requests, after `skip`). Rules come from `--faults FILE` (a JSON
list) or `POST /_emulator/faults`.

Kinds (product-spec section 9):
- `status`: answer `status` (429, 500, 503, 504, ...) with a Graph error body (or none with
  `body: false`) and a `retry_after` of `int:N`, `decimal:X`, `http-date:+N` (seconds from
  now), `missing`, or any raw text; `when: before` (nothing applied) or `after` (the change is
  applied, then the error is returned). Works on standalone requests and on `$batch` items.
- `throttle_warning`: add `x-ms-throttle-limit-percentage: <percentage>` to a success.
- `token_expired`, `claims_challenge`: 401 as Graph sends them. Graph checks the token once
  per HTTP request, so on `$batch` these answer the envelope and never fire on an item.
- `reset_before`: the connection is reset before anything is applied.
- `drop_after`: the change is applied, then the connection closes without a response.
- `drip`: the response is sent one byte every `delay_s` seconds.
- `batch_status`: the `$batch` envelope answers `status` (424, 429, 503, 500; `body: false`
  for none) `before` its items run or `after` they ran.
- `batch_malformed`, `batch_truncated`: items run; the envelope body is not JSON / is cut.
- `batch_missing_items`: items run; `drop` responses (default 1) are left out.
- `batch_unknown_id`, `batch_duplicate_id`: items run; one response carries an id that was
  never sent / the id of another item.
- `operation_fails`, `operation_slow`: a resetPassword operation ends `failed` / stays
  `running` for `seconds`.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from runner.emulator.wire import ConnectionFault, GraphError, Response, dumps


class FaultKind(StrEnum):
    """Every fault the emulator can inject."""

    STATUS = "status"
    THROTTLE_WARNING = "throttle_warning"
    TOKEN_EXPIRED = "token_expired"
    CLAIMS_CHALLENGE = "claims_challenge"
    RESET_BEFORE = "reset_before"
    DROP_AFTER = "drop_after"
    DRIP = "drip"
    BATCH_STATUS = "batch_status"
    BATCH_MALFORMED = "batch_malformed"
    BATCH_TRUNCATED = "batch_truncated"
    BATCH_MISSING_ITEMS = "batch_missing_items"
    BATCH_UNKNOWN_ID = "batch_unknown_id"
    BATCH_DUPLICATE_ID = "batch_duplicate_id"
    OPERATION_FAILS = "operation_fails"
    OPERATION_SLOW = "operation_slow"

    @property
    def has_graph_body(self) -> bool:
        """True when an error status of this kind carries a Graph error body by default."""
        return self in {
            FaultKind.STATUS,
            FaultKind.BATCH_STATUS,
            FaultKind.TOKEN_EXPIRED,
            FaultKind.CLAIMS_CHALLENGE,
        }

    @property
    def envelope_only(self) -> bool:
        """True for faults that only make sense on the `$batch` envelope."""
        return self.value.startswith("batch_")

    @property
    def connection_level(self) -> bool:
        """True for faults on the TCP connection (never inside a batch item)."""
        return self in {FaultKind.RESET_BEFORE, FaultKind.DROP_AFTER, FaultKind.DRIP}

    @property
    def whole_request(self) -> bool:
        """True for faults on a whole HTTP request: its connection, or its token, which Graph
        checks once per request. On `$batch` they hit the envelope, never an item."""
        return self.connection_level or self in {
            FaultKind.TOKEN_EXPIRED,
            FaultKind.CLAIMS_CHALLENGE,
        }


_STATUS_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    409: "Conflict",
    424: "FailedDependency",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "GatewayTimeout",
}
_STATUS_MESSAGES = {
    429: "Please retry again later.",
    503: "The service is temporarily unavailable. Please retry later.",
    504: "The gateway timed out.",
    500: "An internal server error occurred.",
}
# The 401s of the authentication faults: code and message as Graph words them.
_KIND_ERRORS = {
    "token_expired": (
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
    ),
    "claims_challenge": (
        "InvalidAuthenticationToken",
        "Continuous access evaluation resulted in challenge with result: InteractionRequired "
        "and code: TokenIssuedBeforeRevocationTimestamp",
    ),
}
_CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'


class FaultRuleError(ValueError):
    """A fault rule that does not make sense; the message names the field."""


@dataclass(slots=True, kw_only=True)
class FaultRule:
    """One configured fault and its bookkeeping."""

    kind: FaultKind
    path: str = "**"
    method: str = "*"
    rate: float | None = None
    count: int | None = None
    skip: int = 0
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    matched: int = 0
    injected: int = 0
    rng: random.Random = field(default_factory=random.Random)
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], *, index: int = 0) -> FaultRule:
        """A rule from its JSON form; raises FaultRuleError naming the bad field."""
        known = {"kind", "path", "method", "rate", "count", "skip", "seed"}
        try:
            kind = FaultKind(str(raw.get("kind")))
        except ValueError:
            msg = (
                f"fault rule {index}: kind {raw.get('kind')!r} is not one of {', '.join(FaultKind)}"
            )
            raise FaultRuleError(msg) from None
        rate = raw.get("rate")
        count = raw.get("count")
        if rate is None and count is None:
            rate = 1.0
        if rate is not None and not (isinstance(rate, int | float) and 0 <= rate <= 1):
            msg = f"fault rule {index}: rate must be a number between 0 and 1"
            raise FaultRuleError(msg)
        if count is not None and not (isinstance(count, int) and count >= 0):
            msg = f"fault rule {index}: count must be a whole number >= 0"
            raise FaultRuleError(msg)
        path = str(raw.get("path", "**"))
        seed = int(raw.get("seed", 0))
        rule = cls(
            kind=kind,
            path=path,
            method=str(raw.get("method", "*")).upper(),
            rate=None if rate is None else float(rate),
            count=count,
            skip=int(raw.get("skip", 0)),
            seed=seed,
            params={key: value for key, value in raw.items() if key not in known},
            rng=random.Random(seed * 7919 + index),
        )
        if path.startswith("^"):
            try:
                rule.regex = re.compile(path)
            except re.error as exc:
                msg = f"fault rule {index}: path is not a valid regular expression: {exc}"
                raise FaultRuleError(msg) from None
        if kind in {FaultKind.STATUS, FaultKind.BATCH_STATUS} and not isinstance(
            rule.params.get("status"), int
        ):
            msg = f"fault rule {index}: kind {kind} needs a numeric 'status'"
            raise FaultRuleError(msg)
        return rule

    def as_json(self) -> dict[str, Any]:
        """The rule and its counters, for `GET /_emulator/faults`."""
        return {
            "kind": str(self.kind),
            "path": self.path,
            "method": self.method,
            "rate": self.rate,
            "count": self.count,
            "skip": self.skip,
            "seed": self.seed,
            **self.params,
            "matched": self.matched,
            "injected": self.injected,
        }

    def matches(self, method: str, path: str) -> bool:
        """True when the rule's method and path pattern cover this request."""
        if self.method not in {"*", method}:
            return False
        if self.regex is not None:
            return self.regex.search(path) is not None
        return _glob(self.path, path)

    def fires(self) -> bool:
        """Count a match and decide (seeded) whether the fault is injected this time."""
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.count is not None:
            fire = self.injected < self.count
        else:
            fire = self.rng.random() < (self.rate or 0.0)
        if fire:
            self.injected += 1
        return fire


def _glob(pattern: str, path: str) -> bool:
    if pattern in {"**", "*"}:
        return True
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None


def retry_after_value(spec: Any, now: dt.datetime) -> str | None:
    """Retry-After header text for a rule's `retry_after` (None: leave the header out)."""
    if spec is None or spec == "missing":
        return None
    text = str(spec)
    if text.startswith("int:"):
        return str(int(float(text[4:])))
    if text.startswith("decimal:"):
        return text[8:]
    if text.startswith("http-date:"):
        offset = float(text[10:])
        return email.utils.format_datetime(now + dt.timedelta(seconds=offset), usegmt=True)
    return text


@dataclass(slots=True)
class Fault:
    """A fault that fired for one request; the app asks it what to do before and after."""

    kind: FaultKind
    params: dict[str, Any]

    @property
    def wants_graph_body(self) -> bool:
        """True when an injected error status gets Graph's error body (not `body: false`)."""
        return self.kind.has_graph_body and self.params.get("body", True) is not False

    def graph_error(self, status: int) -> GraphError:
        """The Graph error body used for an injected status."""
        default_code, default_message = _KIND_ERRORS.get(
            self.kind.value,
            (
                _STATUS_CODES.get(status, "UnknownError"),
                _STATUS_MESSAGES.get(status, "Injected failure."),
            ),
        )
        code = str(self.params.get("code") or default_code)
        message = str(self.params.get("message") or default_message)
        return GraphError(status, code, message)

    def _status_response(self, now: dt.datetime) -> Response:
        status = int(self.params["status"])
        headers: dict[str, str] = {}
        retry = retry_after_value(self.params.get("retry_after"), now)
        if retry is not None:
            headers["Retry-After"] = retry
        return Response(status=status, headers=headers)

    def before(self, *, now: dt.datetime, in_batch: bool) -> Response | None:
        """A response that replaces the request entirely (nothing applied), or None."""
        kind = self.kind
        if kind in {FaultKind.STATUS, FaultKind.BATCH_STATUS}:
            if self.params.get("when", "before") == "before":
                return self._status_response(now)
            return None
        if kind is FaultKind.TOKEN_EXPIRED:
            return Response(status=401)
        if kind is FaultKind.CLAIMS_CHALLENGE:
            encoded = base64.b64encode(_CLAIMS.encode()).decode()
            return Response(
                status=401,
                headers={
                    "WWW-Authenticate": (
                        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                        'common/oauth2/authorize", '
                        'client_id="00000003-0000-0000-c000-000000000000", '
                        f'error="insufficient_claims", claims="{encoded}"'
                    ),
                },
            )
        if kind is FaultKind.RESET_BEFORE and not in_batch:
            return Response(status=0, fault=ConnectionFault.RESET_BEFORE)
        return None

    def after(self, response: Response, *, now: dt.datetime, in_batch: bool) -> Response:
        """The response to send once the request was applied (possibly replaced)."""
        kind = self.kind
        if kind in {FaultKind.STATUS, FaultKind.BATCH_STATUS}:
            if self.params.get("when", "before") == "after":
                return self._status_response(now)
            return response
        if kind is FaultKind.THROTTLE_WARNING:
            response.headers["x-ms-throttle-limit-percentage"] = str(
                self.params.get("percentage", 0.95)
            )
            return response
        if kind is FaultKind.DROP_AFTER and not in_batch:
            response.fault = ConnectionFault.DROP_AFTER
            return response
        if kind is FaultKind.DRIP and not in_batch:
            response.fault = ConnectionFault.DRIP
            response.drip_delay_s = float(self.params.get("delay_s", 0.5))
            return response
        if kind.envelope_only:
            return self._mangle_batch(response)
        return response

    def _mangle_batch(self, response: Response) -> Response:
        kind = self.kind
        if kind is FaultKind.BATCH_MALFORMED:
            response.body = b'{"responses": [{"id": "1", "status": 200, "body": {'
            return response
        if kind is FaultKind.BATCH_TRUNCATED:
            response.body = response.body[: max(1, len(response.body) // 2)]
            return response
        payload = json.loads(response.body)
        responses: list[dict[str, Any]] = payload.get("responses", [])
        if kind is FaultKind.BATCH_MISSING_ITEMS:
            drop = int(self.params.get("drop", 1))
            payload["responses"] = responses[drop:]
        elif kind is FaultKind.BATCH_UNKNOWN_ID and responses:
            responses[0]["id"] = str(self.params.get("id", "not-a-request-id"))
        elif kind is FaultKind.BATCH_DUPLICATE_ID and len(responses) >= 2:
            responses[1]["id"] = responses[0]["id"]
        response.body = dumps(payload)
        return response


class FaultInjector:
    """The active rules; thread-safe; `pick` returns the fault for one request, if any."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = list(rules)

    @classmethod
    def from_file(cls, path: Path) -> FaultInjector:
        """Rules from a JSON file holding a list of rules (or `{"rules": [...]}`)."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"{path}: cannot read fault rules: {exc}"
            raise FaultRuleError(msg) from None
        items = raw.get("rules") if isinstance(raw, dict) else raw
        if not isinstance(items, list):
            msg = f"{path}: expected a JSON list of fault rules"
            raise FaultRuleError(msg)
        return cls(FaultRule.parse(item, index=i) for i, item in enumerate(items))

    def add(self, raw_rules: Iterable[Mapping[str, Any]]) -> list[FaultRule]:
        """Parse and append rules (all or none)."""
        with self._lock:
            start = len(self._rules)
            parsed = [FaultRule.parse(raw, index=start + i) for i, raw in enumerate(raw_rules)]
            self._rules.extend(parsed)
            return parsed

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        """The rules and their counters."""
        with self._lock:
            return [rule.as_json() for rule in self._rules]

    def pick(self, *, method: str, path: str, in_batch: bool) -> Fault | None:
        """The first rule that matches and fires for this request, as a `Fault`."""
        is_envelope = path == "/$batch"
        with self._lock:
            for rule in self._rules:
                envelope_rule = rule.kind.envelope_only or rule.kind.whole_request
                if rule.kind.envelope_only != is_envelope and not (is_envelope and envelope_rule):
                    continue
                if rule.kind.whole_request and in_batch:
                    continue
                if rule.kind in {FaultKind.OPERATION_FAILS, FaultKind.OPERATION_SLOW}:
                    continue
                if rule.matches(method, path) and rule.fires():
                    return Fault(kind=rule.kind, params=dict(rule.params))
        return None

    def operation_fault(self, user_id: str) -> Fault | None:
        """A fault for a resetPassword operation being created for this user, if any."""
        path = f"/users/{user_id}/authentication/operations"
        with self._lock:
            for rule in self._rules:
                if (
                    rule.kind in {FaultKind.OPERATION_FAILS, FaultKind.OPERATION_SLOW}
                    and (rule.matches("POST", path) or rule.path in {"**", "*"})
                    and rule.fires()
                ):
                    return Fault(kind=rule.kind, params=dict(rule.params))
        return None
