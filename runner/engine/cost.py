"""What a Graph request costs against the identity-and-access quotas (graph-reference §10).

The pacer takes these costs from its budget before a request is sent. A GET costs 1
resource unit unless listed below; `$select` takes 1 off, `$expand` adds 1, `$top` under 20
takes 1 off, never below 1. Every write costs 1 resource unit and 1 write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

_LISTED_GETS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^/users/?$"), 2),
    (re.compile(r"^/groups/[^/]+/members(/.*)?$"), 3),
    (re.compile(r"^/groups/[^/]+/transitiveMembers(/.*)?$"), 5),
    (re.compile(r"^/(me|users/[^/]+)/memberOf(/.*)?$"), 2),
    (re.compile(r"^/(me|users/[^/]+)/transitiveMemberOf(/.*)?$"), 2),
    (re.compile(r"^/servicePrincipals/[^/]+/appRoleAssignments$"), 2),
    (re.compile(r"^/applications/?$"), 2),
)
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    """Resource units and writes of one request."""

    units: int
    writes: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(units=self.units + other.units, writes=self.writes + other.writes)


ZERO = Cost(units=0, writes=0)


def cost_of(method: str, url: str) -> Cost:
    """The cost of `method url` (url relative to the version root, query included)."""
    if method.upper() in _WRITES:
        return Cost(units=1, writes=1)
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or "/"
    units = 1
    for pattern, listed in _LISTED_GETS:
        if pattern.match(path):
            units = listed
            break
    query = parse_qs(parts.query)
    if "$select" in query:
        units -= 1
    if "$expand" in query:
        units += 1
    top = query.get("$top", [""])[0]
    if top.isdigit() and int(top) < 20:
        units -= 1
    return Cost(units=max(units, 1), writes=0)
