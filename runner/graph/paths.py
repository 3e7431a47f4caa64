"""Graph paths for users, with the encoding rules of graph-reference.md §8.

A GUID goes in the path as is. A UPN is percent-encoded (`#EXT#` → `%23EXT%23`; an
unencoded `#` would start a URL fragment and silently target a truncated UPN). A UPN that
starts with `$` must use the key-literal form `/users('$x@y')`, with `'` doubled.
"""

from __future__ import annotations

import re
from urllib.parse import quote

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SAFE = "@'._-!^~"


def is_guid(value: str) -> bool:
    """True for an object id."""
    return GUID.match(value) is not None


def user_path(key: str) -> str:
    """`/users/{key}` for an object id or a UPN, encoded as Graph needs it."""
    if is_guid(key):
        return f"/users/{key.lower()}"
    if key.startswith("$"):
        literal = key.replace("'", "''")
        return f"/users('{quote(literal, safe=_SAFE)}')"
    return f"/users/{quote(key, safe=_SAFE)}"


def odata_string(value: str) -> str:
    """A string literal for `$filter`: single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"
