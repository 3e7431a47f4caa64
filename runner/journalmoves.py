"""The journal's writes, inside a transaction that `runner/journal.py` opened.

Each function reads the current status, checks the move against the state machine
(`runner.runstate`), updates the row and appends to `transitions`. An illegal move raises
`IllegalTransitionError` and the caller's transaction is rolled back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from runner.journalrows import Connection, add_transition, clean, redacted, to_json
from runner.runstate import (
    Attempt,
    IllegalTransitionError,
    Intent,
    ItemStatus,
    Outcome,
    StepStatus,
    TimeSource,
    check_item,
    check_step,
    derive_item_status,
    stamp,
)


def item_status(con: Connection, item_id: int) -> tuple[ItemStatus, bool]:
    """(status, repeatable) of an item; LookupError when there is no such item."""
    found = con.execute("SELECT status, repeatable FROM items WHERE id = ?", (item_id,)).fetchone()
    if found is None:
        msg = f"no item {item_id} in the journal"
        raise LookupError(msg)
    return ItemStatus(found[0]), bool(found[1])


def step_state(con: Connection, item_id: int, key: str) -> tuple[StepStatus, bool] | None:
    """(status, resend_ok) of a step, or None when it has never had an intent."""
    found = con.execute(
        "SELECT status, resend_ok FROM steps WHERE item_id = ? AND key = ?", (item_id, key)
    ).fetchone()
    return None if found is None else (StepStatus(found[0]), bool(found[1]))


def merge_detail(con: Connection, item_id: int, detail: Mapping[str, Any]) -> None:
    """Merge caller detail into the item's detail JSON (RFC 7396 merge patch)."""
    if detail:
        con.execute(
            "UPDATE items SET detail = json_patch(detail, ?) WHERE id = ?",
            (to_json(detail), item_id),
        )


def move_item(
    con: Connection, item_id: int, new: ItemStatus, now: dt.datetime, detail: Mapping[str, Any]
) -> ItemStatus:
    """Move an item to `new` (checked) and record the transition; returns the old status."""
    old, _ = item_status(con, item_id)
    check_item(item_id, old, new)
    con.execute(
        "UPDATE items SET status = ?, updated = ? WHERE id = ?", (str(new), stamp(now), item_id)
    )
    add_transition(con, item_id, None, old, new, now, detail)
    return old


def move_step(
    con: Connection,
    item_id: int,
    key: str,
    new: StepStatus,
    now: dt.datetime,
    detail: Mapping[str, Any],
) -> StepStatus:
    """Move a step to `new` (checked) and record the transition; returns the old status."""
    found = step_state(con, item_id, key)
    if found is None:
        msg = f"item {item_id} has no step {key!r}"
        raise IllegalTransitionError(msg)
    old = found[0]
    check_step(item_id, key, old, new)
    con.execute(
        "UPDATE steps SET status = ?, resend_ok = 0, updated = ? WHERE item_id = ? AND key = ?",
        (str(new), stamp(now), item_id, key),
    )
    add_transition(con, item_id, key, old, new, now, detail)
    return old


def intent(con: Connection, it: Intent, now: dt.datetime) -> None:
    """Record one intent: the step (created if new) and its item move to `intent`."""
    try:
        uuid.UUID(it.intent_id)
    except ValueError:
        msg = f"item {it.item_id}: intent id {it.intent_id!r} is not a UUID"
        raise ValueError(msg) from None
    status, repeatable = item_status(con, it.item_id)
    found = step_state(con, it.item_id, it.step_key)
    old = StepStatus.PLANNED if found is None else found[0]
    where = f"item {it.item_id} step {it.step_key!r}"
    if old is StepStatus.INTENT and not (found and found[1]):
        msg = (
            f"{where}: already in intent with no response proving it was not executed; "
            "record its outcome (or mark it unknown) before sending it again"
        )
        raise IllegalTransitionError(msg)
    if old is StepStatus.UNKNOWN and not repeatable and not it.reissue:
        msg = (
            f"{where}: outcome unknown and the action is not repeatable: never re-sent "
            "automatically (reconcile by reading back; re-issue only with reissue=True)"
        )
        raise IllegalTransitionError(msg)
    if old is StepStatus.PLANNED and status is ItemStatus.UNKNOWN:
        unsettled = con.execute(
            "SELECT count(*) FROM steps WHERE item_id = ? AND status = 'unknown'", (it.item_id,)
        ).fetchone()[0]
        if unsettled:
            msg = f"{where}: the item has unknown outcomes; reconcile them before a new send"
            raise IllegalTransitionError(msg)
    check_step(it.item_id, it.step_key, old, StepStatus.INTENT)
    if status is not ItemStatus.INTENT:
        check_item(it.item_id, status, ItemStatus.INTENT)
    when = stamp(now)
    if found is None:
        con.execute(
            "INSERT INTO steps (item_id, key, label, status, created, updated) "
            "VALUES (?, ?, ?, 'planned', ?, ?)",
            (it.item_id, it.step_key, it.label, when, when),
        )
    con.execute(
        "UPDATE steps SET status = 'intent', attempts = attempts + 1, resend_ok = 0, "
        "client_request_id = ?, intent_time = ?, intent_time_source = ?, "
        "label = CASE WHEN ? != '' THEN ? ELSE label END, updated = ?, finished = NULL "
        "WHERE item_id = ? AND key = ?",
        (
            it.intent_id,
            stamp(it.intent_time),
            str(TimeSource(it.time_source)),
            it.label,
            it.label,
            when,
            it.item_id,
            it.step_key,
        ),
    )
    detail: dict[str, Any] = {
        "intent_id": it.intent_id,
        "intent_time": stamp(it.intent_time),
        "time_source": str(it.time_source),
    }
    if it.reissue:
        detail["reissue"] = True
    add_transition(con, it.item_id, it.step_key, old, StepStatus.INTENT, now, detail)
    con.execute(
        "UPDATE items SET status = 'intent', attempts = attempts + 1, "
        "started = coalesce(started, ?), finished = NULL, updated = ?, "
        "secret_ref = coalesce(?, secret_ref) WHERE id = ?",
        (when, when, it.secret_ref, it.item_id),
    )
    if status is not ItemStatus.INTENT:
        add_transition(con, it.item_id, None, status, ItemStatus.INTENT, now, {"step": it.step_key})


def attempt(con: Connection, at: Attempt, *, resend_ok: bool, now: dt.datetime) -> None:
    """Record a response that leaves its step in `intent` (not executed, or pending)."""
    found = step_state(con, at.item_id, at.step_key)
    if found is None or found[0] is not StepStatus.INTENT:
        state = "missing" if found is None else str(found[0])
        msg = (
            f"item {at.item_id} step {at.step_key!r}: a response for a step that is "
            f"{state}, not intent"
        )
        raise IllegalTransitionError(msg)
    message = redacted(at.error_message)
    when = stamp(now)
    con.execute(
        "UPDATE steps SET resend_ok = ?, http_status = ?, error_code = ?, error_message = ?, "
        "request_id = coalesce(?, request_id), location = coalesce(?, location), "
        "updated = ? WHERE item_id = ? AND key = ?",
        (
            int(resend_ok),
            at.http_status,
            at.error_code,
            message,
            at.request_id,
            at.location,
            when,
            at.item_id,
            at.step_key,
        ),
    )
    con.execute(
        "UPDATE items SET http_status = ?, error_code = ?, error_message = ?, "
        "request_id = coalesce(?, request_id), updated = ? WHERE id = ?",
        (at.http_status, at.error_code, message, at.request_id, when, at.item_id),
    )


def outcome(con: Connection, out: Outcome, now: dt.datetime) -> None:
    """Record how a step ended (or was reconciled); finish its item when asked."""
    if out.status not in {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.UNKNOWN}:
        msg = f"an outcome is succeeded, failed or unknown, not {out.status}"
        raise IllegalTransitionError(msg)
    detail: dict[str, Any] = {
        "http_status": out.http_status,
        "error_code": out.error_code,
        "request_id": out.request_id,
        **clean(out.detail),
    }
    found = step_state(con, out.item_id, out.step_key)
    if found is not None and found[0] is StepStatus.UNKNOWN:
        detail["reconciled"] = True
    move_step(con, out.item_id, out.step_key, out.status, now, detail)
    when = stamp(now)
    message = redacted(out.error_message)
    con.execute(
        "UPDATE steps SET http_status = coalesce(?, http_status), error_code = ?, "
        "error_message = ?, request_id = coalesce(?, request_id), "
        "location = coalesce(?, location), finished = ? WHERE item_id = ? AND key = ?",
        (
            out.http_status,
            out.error_code,
            message,
            out.request_id,
            out.location,
            None if out.status is StepStatus.UNKNOWN else when,
            out.item_id,
            out.step_key,
        ),
    )
    con.execute(
        "UPDATE items SET http_status = coalesce(?, http_status), error_code = ?, "
        "error_message = ?, request_id = coalesce(?, request_id), "
        "secret_ref = coalesce(?, secret_ref), updated = ? WHERE id = ?",
        (
            out.http_status,
            out.error_code,
            message,
            out.request_id,
            out.secret_ref,
            when,
            out.item_id,
        ),
    )
    merge_detail(con, out.item_id, clean(out.detail))
    if out.finish_item:
        finish(con, out.item_id, now, None)


def unknown(con: Connection, item_id: int, key: str, now: dt.datetime, reason: str) -> None:
    """A step in `intent` that may have been executed becomes `unknown`, and its item too."""
    text = redacted(reason) or ""
    move_step(con, item_id, key, StepStatus.UNKNOWN, now, {"reason": text})
    status, _ = item_status(con, item_id)
    if status is ItemStatus.INTENT:
        move_item(con, item_id, ItemStatus.UNKNOWN, now, {"reason": text, "step": key})
    con.execute(
        "UPDATE items SET reason = ?, finished = ?, updated = ? WHERE id = ?",
        (text, stamp(now), stamp(now), item_id),
    )


def withdraw(con: Connection, item_id: int, key: str, now: dt.datetime, reason: str) -> None:
    """A step whose request was never sent (or proved not executed) goes back to planned;
    its item too when none of its steps is anything but planned."""
    move_step(con, item_id, key, StepStatus.PLANNED, now, {"reason": reason})
    status, _ = item_status(con, item_id)
    sent = con.execute(
        "SELECT count(*) FROM steps WHERE item_id = ? AND status != 'planned'", (item_id,)
    ).fetchone()[0]
    if status is ItemStatus.INTENT and not sent:
        move_item(con, item_id, ItemStatus.PLANNED, now, {"reason": reason})


def skip_planned_steps(con: Connection, item_id: int, now: dt.datetime) -> None:
    """Steps of an item still `planned` become `skipped` (the item ends without them)."""
    planned = con.execute(
        "SELECT key FROM steps WHERE item_id = ? AND status = 'planned'", (item_id,)
    ).fetchall()
    for (key,) in planned:
        move_step(con, item_id, key, StepStatus.SKIPPED, now, {})


def finish(con: Connection, item_id: int, now: dt.datetime, reason: str | None) -> ItemStatus:
    """End an item: remaining planned steps are skipped, its status derived from its steps."""
    skip_planned_steps(con, item_id, now)
    rows = con.execute(
        "SELECT status, http_status, error_code, error_message, request_id FROM steps "
        "WHERE item_id = ? ORDER BY updated, seq",
        (item_id,),
    ).fetchall()
    try:
        new = derive_item_status(StepStatus(row[0]) for row in rows)
    except ValueError as exc:
        msg = f"item {item_id}: {exc}"
        raise IllegalTransitionError(msg) from None
    deciding = [row for row in rows if row[0] == new]
    last = deciding[-1] if new is ItemStatus.SUCCEEDED else deciding[0]
    old, _ = item_status(con, item_id)
    if old is not new:
        move_item(con, item_id, new, now, {"reason": reason} if reason else {})
    text = redacted(reason)
    if text is None and old is ItemStatus.UNKNOWN and new is not old:
        # "may have been executed; reading back" is no longer true: say what decided it.
        text = redacted(last[3]) or f"{new} after reading back"
    con.execute(
        "UPDATE items SET http_status = ?, error_code = ?, error_message = ?, "
        "request_id = coalesce(?, request_id), "
        "reason = CASE WHEN ? = 'succeeded' THEN ? ELSE coalesce(?, reason) END, "
        "finished = ?, updated = ? WHERE id = ?",
        (last[1], last[2], last[3], last[4], str(new), text, text, stamp(now), stamp(now), item_id),
    )
    return new


def set_direct(
    con: Connection,
    item_id: int,
    new: ItemStatus,
    now: dt.datetime,
    *,
    reason: str,
    facts: tuple[int | None, str | None, str | None],
    detail: Mapping[str, Any],
) -> None:
    """A move that sends nothing (noop, drifted, skipped, refused, failed, confirmed)."""
    skip_planned_steps(con, item_id, now)
    move_item(con, item_id, new, now, {"reason": reason, **detail})
    http_status, code, message = facts
    con.execute(
        "UPDATE items SET reason = ?, finished = ?, http_status = coalesce(?, http_status), "
        "error_code = coalesce(?, error_code), error_message = coalesce(?, error_message) "
        "WHERE id = ?",
        (reason, stamp(now), http_status, code, redacted(message), item_id),
    )
    merge_detail(con, item_id, detail)


def verify(
    con: Connection, item_id: int, verified: bool, now: dt.datetime, detail: Mapping[str, Any]
) -> bool:
    """Record a read-back; False (nothing changed) when the item is already verified."""
    status, _ = item_status(con, item_id)
    if status is ItemStatus.VERIFIED:
        return False
    if status not in {ItemStatus.SUCCEEDED, ItemStatus.NOOP}:
        msg = f"item {item_id}: cannot verify an item that is {status}"
        raise IllegalTransitionError(msg)
    if verified and status is ItemStatus.SUCCEEDED:
        move_item(con, item_id, ItemStatus.VERIFIED, now, detail)
    con.execute(
        "UPDATE items SET verified = ?, verified_at = ?, updated = ? WHERE id = ?",
        (int(verified), stamp(now), stamp(now), item_id),
    )
    merge_detail(con, item_id, {"verification": dict(detail)} if detail else {})
    return True
