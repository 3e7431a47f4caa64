"""The emulated tenant's state in SQLite: users, methods, groups, roles, apps, ledger, log.

One connection, guarded by a lock, shared by the server's threads. Every method is a short
transaction. Rows come back as plain dicts (`sqlite3.Row` mapped) so the route modules
shape them into Graph's JSON.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1"

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    upn TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    given_name TEXT,
    surname TEXT,
    mail TEXT,
    user_type TEXT NOT NULL,                 -- Member | Guest
    account_enabled INTEGER NOT NULL,
    synced INTEGER NOT NULL DEFAULT 0,       -- onPremisesSyncEnabled
    department TEXT,
    job_title TEXT,
    company_name TEXT,
    office_location TEXT,
    city TEXT,
    country TEXT,
    usage_location TEXT,
    employee_id TEXT,
    mobile_phone TEXT,
    created TEXT NOT NULL,
    last_password_change TEXT NOT NULL,
    force_change INTEGER NOT NULL DEFAULT 0,
    force_change_mfa INTEGER NOT NULL DEFAULT 0,
    sessions_valid_from TEXT NOT NULL,       -- the truth
    sessions_prev TEXT,                      -- what readers see until sessions_visible_at
    sessions_visible_at TEXT,
    per_user_mfa TEXT NOT NULL DEFAULT 'disabled',
    preferred_method TEXT,                   -- userPreferredMethodForSecondaryAuthentication
    system_preferred INTEGER NOT NULL DEFAULT 1,
    password_set INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS methods (
    user_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- phone | email | microsoftAuthenticator | ...
    created TEXT NOT NULL,
    data TEXT NOT NULL,                      -- JSON: the type's own fields
    deleted_at TEXT,                         -- set on DELETE; lists show it until + delay
    PRIMARY KEY (user_id, id)
);
CREATE INDEX IF NOT EXISTS methods_user ON methods (user_id);
CREATE TABLE IF NOT EXISTS groups_ (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    description TEXT,
    mail_nickname TEXT,
    security_enabled INTEGER NOT NULL DEFAULT 1,
    is_assignable_to_role INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,               -- user | group | servicePrincipal
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX IF NOT EXISTS group_members_member ON group_members (member_id);
CREATE TABLE IF NOT EXISTS roles (
    id TEXT PRIMARY KEY,                     -- directoryRole object id
    template_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description TEXT,
    is_privileged INTEGER NOT NULL,
    is_builtin INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS role_members (
    role_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,            -- user | servicePrincipal | group
    PRIMARY KEY (role_id, principal_id)
);
CREATE INDEX IF NOT EXISTS role_members_principal ON role_members (principal_id);
CREATE TABLE IF NOT EXISTS apps (
    client_id TEXT PRIMARY KEY,
    sp_id TEXT NOT NULL UNIQUE,              -- service principal object id (token oid)
    name TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- confidential | public | managed_identity
    secret TEXT,
    cert_thumbprint_sha1 TEXT,
    cert_thumbprint_sha256 TEXT,
    cert_pem TEXT,
    permissions TEXT NOT NULL                -- JSON list: app roles, or delegated scopes
);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    app TEXT NOT NULL,
    status TEXT NOT NULL,                    -- notStarted | running | succeeded | failed
    created TEXT NOT NULL,
    last_action TEXT NOT NULL,
    completes_at TEXT NOT NULL,
    outcome TEXT NOT NULL                    -- succeeded | failed: what it will become
);
CREATE INDEX IF NOT EXISTS operations_due ON operations (status, completes_at);
CREATE TABLE IF NOT EXISTS device_codes (
    device_code TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    state TEXT NOT NULL,                     -- pending | approved | denied | redeemed
    user_id TEXT
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    app TEXT NOT NULL,
    user_id TEXT NOT NULL,
    effect TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_user ON ledger (user_id);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    app TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    batch INTEGER,                           -- seq of the enclosing $batch, if an item
    request_id TEXT NOT NULL,
    client_request_id TEXT,
    write INTEGER NOT NULL DEFAULT 0
);
"""


class Store:
    """Thread-safe access to the tenant database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=OFF")
        self._db.executescript(DDL)

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically (BEGIN IMMEDIATE ... COMMIT) under the store lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts."""
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, params).fetchall()]

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of a SELECT, or None."""
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as db:
            return db.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many rows in one transaction."""
        with self.transaction() as db:
            db.executemany(sql, rows)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # -- meta -----------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A tenant-level value (tenant_id, seed, domain, ...)."""
        row = self.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Set a tenant-level value."""
        self.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def is_seeded(self) -> bool:
        """True once a tenant has been generated into this database."""
        return self.meta("schema_version") is not None

    # -- users ----------------------------------------------------------------------------

    def user(self, key: str) -> dict[str, Any] | None:
        """A user by object id or by UPN (case-insensitive)."""
        row = self.query_one("SELECT * FROM users WHERE id = ?", (key.lower(),))
        if row is None:
            row = self.query_one("SELECT * FROM users WHERE upn = ?", (key,))
        return row

    def update_user(self, user_id: str, **columns: Any) -> None:
        """Set columns of one user (column names come from code, never from a request)."""
        if not columns:
            return
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*columns.values(), user_id))

    # -- ledger and request log -----------------------------------------------------------

    def record_effect(
        self, *, time: str, app: str, user_id: str, effect: str, detail: dict[str, Any]
    ) -> int:
        """Append one applied state change to the side-effect ledger; returns its seq."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO ledger (time, app, user_id, effect, detail) VALUES (?, ?, ?, ?, ?)",
                (time, app, user_id, effect, json.dumps(detail, sort_keys=True)),
            )
            return int(cur.lastrowid or 0)

    def ledger(self, *, since: int = 0, limit: int = 100_000) -> list[dict[str, Any]]:
        """Ledger rows after `since`, oldest first, `detail` decoded."""
        rows = self.query(
            "SELECT seq, time, app, user_id, effect, detail FROM ledger WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (since, limit),
        )
        for row in rows:
            row["detail"] = json.loads(row["detail"])
        return rows
