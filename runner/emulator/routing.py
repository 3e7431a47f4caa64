"""The Graph route table: method + path pattern → handler, with its throttling cost.

Route modules register handlers with `@route(...)` at import time. A handler takes the
request context and the named groups of its pattern and returns a `Response` or raises
`GraphError`. Patterns match the path after the version prefix (`/v1.0`, `/beta`), already
percent-decoded, with the `/users('key')` form rewritten to `/users/key`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runner.emulator.wire import GraphError, Request, Response

if TYPE_CHECKING:
    from runner.emulator.app import EmulatorApp
    from runner.emulator.authz import Principal

BOTH = frozenset({"v1.0", "beta"})
BETA = frozenset({"beta"})


@dataclass(slots=True, kw_only=True)
class Ctx:
    """Everything a handler may use for one request (or one `$batch` item)."""

    app: EmulatorApp
    req: Request
    principal: Principal
    version: str
    path: str
    now: dt.datetime
    request_id: str
    literal_key: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def version_root(self) -> str:
        """The absolute URL of this version's root, e.g. `http://127.0.0.1:1234/v1.0`."""
        return f"{self.app.graph_url}/{self.version}"

    def context_url(self, fragment: str) -> str:
        """An `@odata.context` value for `$metadata#fragment`."""
        return f"{self.version_root}/$metadata#{fragment}"

    def actor_roles(self) -> frozenset[str]:
        """Role template ids held by the caller (the app's service principal or the user)."""
        return self.app.roles_of(self.principal.object_id)

    def record(self, *, user_id: str, effect: str, detail: dict[str, Any]) -> None:
        """Append an applied state change to the side-effect ledger."""
        self.app.record_effect(
            now=self.now, app=self.principal.app_id, user_id=user_id, effect=effect, detail=detail
        )


Handler = Callable[..., Response]


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One Graph operation."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    versions: frozenset[str]
    resource_units: int
    write: bool


ROUTES: list[Route] = []


def route(
    method: str,
    pattern: str,
    *,
    resource_units: int = 1,
    versions: frozenset[str] = BOTH,
) -> Callable[[Handler], Handler]:
    """Register a handler for `method` on paths fully matching `pattern`."""

    def decorator(handler: Handler) -> Handler:
        ROUTES.append(
            Route(
                method=method,
                pattern=re.compile(pattern),
                handler=handler,
                versions=versions,
                resource_units=resource_units,
                write=method in {"POST", "PATCH", "PUT", "DELETE"},
            )
        )
        return handler

    return decorator


def find(method: str, path: str, version: str) -> tuple[Route, dict[str, str]]:
    """The route for a request, or the Graph error a real service gives (400/404/405)."""
    other_method = False
    for candidate in ROUTES:
        if version not in candidate.versions:
            continue
        match = candidate.pattern.fullmatch(path)
        if match is None:
            continue
        if candidate.method != method:
            other_method = True
            continue
        return candidate, match.groupdict()
    if other_method:
        raise GraphError(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    segment = path.strip("/").split("/")[0] or path
    raise GraphError(
        400,
        "BadRequest",
        f"Resource not found for the segment '{segment}'.",
    )


# Functions called before each request to let time-driven state advance (a long-running
# operation finishing, say). Route modules append to it at import time.
Settler = Callable[["EmulatorApp", dt.datetime], None]
SETTLERS: list[Settler] = []


def resource_units(found: Route, query: dict[str, str] | Any) -> int:
    """Graph's cost of a call (graph-reference §10): base, `$select` -1, `$expand` +1,
    `$top` < 20 -1, at least 1. Writes cost 1 resource unit (and 1 write)."""
    if found.write:
        return 1
    units = found.resource_units
    if "$select" in query:
        units -= 1
    if "$expand" in query:
        units += 1
    top = query.get("$top")
    if top is not None and top.isdigit() and int(top) < 20:
        units -= 1
    return max(units, 1)
