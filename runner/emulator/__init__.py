"""The emulated Entra tenant: a real Graph-speaking server on loopback.

    with Emulator(EmulatorConfig(state_dir=path, users=200)) as emu:
        emu.info            # the content of emulator.json
        emu.graph_url       # http://127.0.0.1:PORT (serves /v1.0 and /beta)

`entra-bulk emulator serve` runs one in the foreground; `--tenant emulator` starts one in-process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from runner.emulator.app import EmulatorApp, graph_request_from_http, utc_now
from runner.emulator.authz import ROLE_NAMES
from runner.emulator.config import EmulatorConfig, Latency, Limits
from runner.emulator.faults import FaultInjector
from runner.emulator.seed import generate
from runner.emulator.server import EmulatorHTTPServer
from runner.emulator.store import Store
from runner.emulator.throttle import Throttler
from runner.emulator.tls import ensure_client_certificate, ensure_server_tls
from runner.emulator.tokens import TokenSigner, app_claims, user_claims
from runner.emulator.wire import Request

CONNECTION_FILE = "emulator.json"
DATABASE_FILE = "tenant.sqlite"

__all__ = [
    "CONNECTION_FILE",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStateError",
    "Latency",
    "Limits",
]


class EmulatorStateError(Exception):
    """The state folder holds a different tenant than the one asked for."""


def _is_graph_call(request: Request) -> bool:
    return not request.path.startswith(("/_emulator", "/metadata/"))


class Emulator:
    """Starts the Graph and token servers over a tenant kept in `config.state_dir`."""

    def __init__(self, config: EmulatorConfig, *, reset: bool = False) -> None:
        self.config = config
        self.reset = reset
        self.state_dir = config.state_dir
        self.connection_file = config.state_dir / CONNECTION_FILE
        self.store: Store | None = None
        self.app: EmulatorApp | None = None
        self._graph: EmulatorHTTPServer | None = None
        self._sts: EmulatorHTTPServer | None = None
        self.info: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _open_store(self) -> Store:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        config.state_dir.chmod(0o700)
        path = config.state_dir / DATABASE_FILE
        if self.reset and path.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        store = Store(path)
        if not store.is_seeded():
            generate(store, users=config.users, seed=config.seed)
            return store
        held = (store.meta("seed"), store.meta("users"))
        if held != (str(config.seed), str(config.users)):
            store.close()
            msg = (
                f"{config.state_dir} holds a tenant of {held[1]} users from seed {held[0]}, "
                f"not {config.users} users from seed {config.seed}; use another --state folder "
                "or --reset to regenerate it"
            )
            raise EmulatorStateError(msg)
        return store

    def start(self) -> None:
        """Open (or generate) the tenant and start serving."""
        config = self.config
        store = self._open_store()
        self.store = store
        tenant_id = store.meta("tenant_id") or ""
        signer = TokenSigner(config.state_dir / "signing-key.pem", tenant_id=tenant_id)
        faults = (
            FaultInjector.from_file(config.faults_file) if config.faults_file else FaultInjector()
        )
        throttler = Throttler(
            config.limits,
            tenant_id=tenant_id,
            time_scale=config.time_scale,
            enabled=config.throttle,
        )
        app = EmulatorApp(
            config=config, store=store, signer=signer, throttler=throttler, faults=faults
        )
        self.app = app
        app.on_reset = self._regenerate
        app.on_latency = self._set_latency
        tls_files = ensure_server_tls(config.state_dir)
        self._install_client_certificates()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_files.cert_file, tls_files.key_file)
        self._graph = EmulatorHTTPServer(
            (config.host, config.port),
            handler=app.handle_graph,
            make_request=graph_request_from_http,
            latency=config.latency,
            latency_seed=config.seed,
            latency_paths=_is_graph_call,
        )
        self._sts = EmulatorHTTPServer(
            (config.host, config.sts_port),
            handler=app.handle_sts,
            make_request=graph_request_from_http,
            tls=context,
        )
        app.graph_url = f"http://{config.host}:{self._graph.port}"
        app.sts_url = f"https://{config.host}:{self._sts.port}"
        from runner.emulator.sts import TokenService

        app.sts = TokenService(app)
        self._graph.start()
        self._sts.start()
        self.info = self._connection_info(tls_files.ca_file)
        self._write_connection_file()

    def _install_client_certificates(self) -> None:
        assert self.store is not None
        store = self.store
        for row in store.query("SELECT client_id, name FROM apps WHERE kind = 'confidential'"):
            cert = ensure_client_certificate(self.config.state_dir, str(row["name"]))
            store.execute(
                "UPDATE apps SET cert_thumbprint_sha1 = ?, cert_thumbprint_sha256 = ?, "
                "cert_pem = ? WHERE client_id = ?",
                (cert.thumbprint_sha1, cert.thumbprint_sha256, cert.cert_pem, row["client_id"]),
            )

    def _regenerate(self) -> None:
        """The admin API's state reset: the seeded tenant again, logs emptied."""
        assert self.store is not None
        with self.store.transaction() as db:
            tables = [
                str(row[0])
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in tables:
                db.execute(f"DELETE FROM {table}")
        generate(self.store, users=self.config.users, seed=self.config.seed)
        self._install_client_certificates()

    def _set_latency(self, latency: Latency) -> None:
        if self._graph is not None:
            self._graph.latency = latency

    def stop(self) -> None:
        """Stop both servers and close the tenant database."""
        for server in (self._graph, self._sts):
            if server is not None:
                server.stop()
        self._graph = self._sts = None
        if self.store is not None:
            self.store.close()
            self.store = None
        self.connection_file.unlink(missing_ok=True)

    # -- connection details ---------------------------------------------------------------

    def _connection_info(self, ca_file: Path) -> dict[str, Any]:
        assert self.app is not None and self.store is not None
        app = self.app
        apps = []
        for row in self.store.query("SELECT * FROM apps ORDER BY rowid"):
            roles = sorted(ROLE_NAMES.get(role, role) for role in app.roles_of(str(row["sp_id"])))
            certificate = None
            if row["kind"] == "confidential":
                certificate = str(self.config.state_dir / f"{row['name']}.pem")
            apps.append(
                {
                    "name": row["name"],
                    "client_id": row["client_id"],
                    "client_secret": row["secret"],
                    "certificate": certificate,
                    "permissions": json.loads(row["permissions"]),
                    "directory_roles": roles,
                }
            )
        return {
            "tenant_id": app.tenant_id,
            "graph_url": app.graph_url,
            "authority": f"{app.sts_url}/{app.tenant_id}",
            "ca_file": str(ca_file),
            "managed_identity_endpoint": f"{app.graph_url}/metadata/identity/oauth2/token",
            "admin_url": f"{app.graph_url}/_emulator",
            "time_scale": self.config.time_scale,
            "limits": self.config.limits.as_json(),
            "apps": apps,
        }

    def _write_connection_file(self) -> None:
        temporary = self.connection_file.with_suffix(".json.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.info, handle, indent=2)
            handle.write("\n")
        temporary.replace(self.connection_file)

    @property
    def graph_url(self) -> str:
        """Root URL of the Graph host (serves `/v1.0` and `/beta`)."""
        return str(self.info["graph_url"])

    @property
    def admin_url(self) -> str:
        """Root URL of the admin API."""
        return str(self.info["admin_url"])

    @property
    def tenant_id(self) -> str:
        """The tenant's id."""
        return str(self.info["tenant_id"])

    def app_entry(self, name: str) -> dict[str, Any]:
        """An app registration of `emulator.json` by name."""
        for entry in self.info["apps"]:
            if entry["name"] == name:
                return dict(entry)
        msg = f"no app named {name!r}"
        raise KeyError(msg)

    # -- tokens for tests and benchmarks (the token endpoint issues the same) --------------

    def mint_app_token(
        self,
        name: str = "entra-bulk-admin",
        *,
        permissions: list[str] | None = None,
        lifetime_s: int | None = None,
    ) -> str:
        """An app-only access token for an app of this tenant, as client credentials give."""
        assert self.app is not None and self.store is not None
        row = self.store.query_one("SELECT * FROM apps WHERE name = ?", (name,))
        if row is None:
            msg = f"no app named {name!r}"
            raise KeyError(msg)
        claims = app_claims(
            tenant_id=self.app.tenant_id,
            client_id=str(row["client_id"]),
            sp_id=str(row["sp_id"]),
            app_name=name,
            permissions=permissions if permissions is not None else json.loads(row["permissions"]),
            now=time.time(),
            lifetime_s=lifetime_s if lifetime_s is not None else self.config.token_lifetime_s,
        )
        return self.app.signer.sign(claims)

    def mint_user_token(
        self,
        upn: str,
        *,
        scopes: list[str] | None = None,
        app_name: str = "entra-bulk-cli",
        lifetime_s: int | None = None,
    ) -> str:
        """A delegated access token for a user of this tenant, as device code gives."""
        assert self.app is not None and self.store is not None
        app_row = self.store.query_one("SELECT * FROM apps WHERE name = ?", (app_name,))
        user = self.store.user(upn)
        if app_row is None or user is None:
            msg = f"no app {app_name!r} or no user {upn!r}"
            raise KeyError(msg)
        claims = user_claims(
            tenant_id=self.app.tenant_id,
            client_id=str(app_row["client_id"]),
            app_name=app_name,
            user_id=str(user["id"]),
            upn=str(user["upn"]),
            display_name=str(user["display_name"]),
            scopes=scopes if scopes is not None else json.loads(app_row["permissions"]),
            role_templates=sorted(self.app.roles_of(str(user["id"]))),
            now=time.time(),
            lifetime_s=lifetime_s if lifetime_s is not None else self.config.token_lifetime_s,
        )
        return self.app.signer.sign(claims)

    def now(self) -> dt.datetime:
        """The emulator's clock."""
        return self.app.clock() if self.app is not None else utc_now()
