"""Finding the objects a Graph path names, with Graph's own errors when they are absent."""

from __future__ import annotations

import re
from typing import Any

from runner.emulator.routing import Ctx
from runner.emulator.wire import GraphError

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def not_found(key: str) -> GraphError:
    """Graph's 404 for a directory object that does not exist (by id or UPN)."""
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def user_or_404(ctx: Ctx, key: str) -> dict[str, Any]:
    """The user a path segment names (object id or UPN); 400 for a bare `$` key, else 404."""
    if key.startswith("$") and not ctx.literal_key:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid object identifier '{key}'.",
        )
    if ctx.path.startswith("/me") and key == "me":
        key = ctx.principal.object_id
    row = ctx.app.store.user(key)
    if row is None:
        raise not_found(key)
    return row
