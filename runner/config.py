"""Profiles, environment variables and clouds, resolved once into a frozen `Settings`.

Where a tenant comes from, in order: `--tenant emulator` (built in); `--tenant NAME` (a
profile of `entra-bulk.toml`: `--config PATH`, else the working folder, else the user's
config folder); with no `--tenant`, azure-identity's environment variables
(`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
`AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_CLIENT_CERTIFICATE_PASSWORD`), else the file's only
profile or its `default`. Secrets come from the environment or a file, never from the
profile's text. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from runner.errors import ConfigError

APP_DIR_NAME = "entra-bulk"
PROFILE_FILE = "entra-bulk.toml"
EMULATOR_PROFILE = "emulator"
EMULATOR_ENV = "ENTRA_BULK_EMULATOR"
EMULATOR_PROTECTED_GROUPS = ("Emergency Access Accounts",)
# The emulated tenant's quotas belong to the runner alone (no other app draws on them), so its
# profile budgets nearly all of them. Not all: the pacer takes a batch's cost when it sends it,
# Graph when the batch arrives, so a bucket that leaves "full" on both sides falls behind
# Graph's by the send delay; 1 % covers that. `limits.max_share` in emulator.json overrides it.
EMULATOR_MAX_SHARE = 0.99


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    base = Path(value) if value else Path.home() / fallback
    return base / APP_DIR_NAME


def user_config_dir() -> Path:
    """The user's config folder (`$XDG_CONFIG_HOME/entra-bulk`)."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def user_data_dir() -> Path:
    """The user's data folder (`$XDG_DATA_HOME/entra-bulk`): the local emulated tenant."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def user_state_dir() -> Path:
    """The user's state folder (`$XDG_STATE_HOME/entra-bulk`): crash logs, token cache."""
    return _xdg("XDG_STATE_HOME", ".local/state")


class AuthMode(StrEnum):
    """How the runner obtains tokens (all through msal)."""

    CLIENT_SECRET = "client-secret"  # noqa: S105 - the name of an auth mode
    CERTIFICATE = "certificate"
    DEVICE_CODE = "device-code"
    MANAGED_IDENTITY = "managed-identity"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cloud:
    """A national cloud: its Graph endpoint and authority host (graph-reference §13)."""

    name: str
    graph_url: str
    authority_host: str
    portal_url: str


CLOUDS: Mapping[str, Cloud] = {
    "global": Cloud(
        name="global",
        graph_url="https://graph.microsoft.com",
        authority_host="https://login.microsoftonline.com",
        portal_url="https://entra.microsoft.com",
    ),
    "usgov": Cloud(
        name="usgov",
        graph_url="https://graph.microsoft.us",
        authority_host="https://login.microsoftonline.us",
        portal_url="https://portal.azure.us",
    ),
    "usgov-dod": Cloud(
        name="usgov-dod",
        graph_url="https://dod-graph.microsoft.us",
        authority_host="https://login.microsoftonline.us",
        portal_url="https://portal.azure.us",
    ),
    "china": Cloud(
        name="china",
        graph_url="https://microsoftgraph.chinacloudapi.cn",
        authority_host="https://login.chinacloudapi.cn",
        portal_url="https://portal.azure.cn",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The pacer's budget: Graph's published quotas for this app+tenant (graph-reference §10).

    `max_share` is the part of the quota this run may use, leaving room for other apps.
    """

    writes_per_150s: int = 3000
    resource_units_per_10s: int = 8000
    tenant_writes_per_300s: int = 18000
    max_share: float = 0.9
    time_scale: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorTarget:
    """Where the emulated tenant is: a running one (connection file) or a state folder."""

    connection_file: Path | None = None
    state_dir: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything needed to reach one tenant. Secrets are kept out of `repr`."""

    profile: str
    tenant_id: str
    auth: AuthMode
    cloud: Cloud
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: Path | None = None
    certificate_password: str | None = field(default=None, repr=False)
    managed_identity_client_id: str | None = None
    token_cache_path: Path | None = None
    protected_users: tuple[str, ...] = ()
    protected_groups: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    throttle_priority: str | None = None
    emulator: EmulatorTarget | None = None
    # Filled in for an emulated tenant (from its connection file).
    graph_url_override: str | None = None
    authority_override: str | None = None
    ca_file: str | None = None
    managed_identity_endpoint: str | None = None

    @property
    def graph_url(self) -> str:
        """The Graph root (serves `/v1.0` and `/beta`)."""
        return self.graph_url_override or self.cloud.graph_url

    @property
    def authority(self) -> str:
        """The token authority: host + tenant."""
        return self.authority_override or f"{self.cloud.authority_host}/{self.tenant_id}"

    @property
    def is_emulator(self) -> bool:
        """True when the tenant is the emulated one."""
        return self.emulator is not None

    @property
    def graph_scope(self) -> str:
        """The `.default` scope of the cloud's Graph (the emulator's tokens use global's)."""
        return f"{self.cloud.graph_url}/.default"


_PROFILE_KEYS = {
    "tenant_id",
    "client_id",
    "auth",
    "certificate",
    "certificate_password_env",
    "client_secret_env",
    "client_secret_file",
    "cloud",
    "managed_identity_client_id",
    "token_cache",
    "protected_users",
    "protected_groups",
    "max_share",
    "writes_per_150s",
    "resource_units_per_10s",
    "throttle_priority",
}
_SECRET_KEYS = {"client_secret", "certificate_password", "password", "secret"}


def profile_files(explicit: Path | None) -> list[Path]:
    """The profile files looked at, in order."""
    if explicit is not None:
        return [explicit]
    return [Path.cwd() / PROFILE_FILE, user_config_dir() / PROFILE_FILE]


def _read_profiles(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{path}: cannot read: {exc.strerror}"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        msg = f"{path}: [profiles] must be a table of profiles"
        raise ConfigError(msg)
    return data


def resolve(
    *,
    tenant: str | None,
    config_path: Path | None,
    env: Mapping[str, str] | None = None,
    for_tenant: str | None = None,
    emulated: bool = False,
) -> Settings:
    """The settings for `--tenant` / `--config`, or a ConfigError that says how to fix it.

    `for_tenant` and `emulated` describe the tenant a frozen plan or a run was made for: with
    no `--tenant` and no AZURE_TENANT_ID, an emulated plan goes to the emulated tenant, and a
    profile file of several profiles and no default gives the one for that tenant id.
    """
    env = os.environ if env is None else env
    chosen = tenant is not None or bool(env.get("AZURE_TENANT_ID"))
    if tenant == EMULATOR_PROFILE or (emulated and not chosen):
        return emulator_settings(env)
    if config_path is not None and not config_path.exists():
        msg = f"{config_path}: no such profile file"
        raise ConfigError(msg)
    files = [path for path in profile_files(config_path) if path.exists()]
    data = _read_profiles(files[0]) if files else {"profiles": {}}
    source = files[0] if files else None
    profiles: dict[str, Any] = data.get("profiles", {})
    if tenant is not None:
        if tenant not in profiles:
            where = str(source) if source else f"./{PROFILE_FILE} or {user_config_dir()}"
            known = ", ".join(sorted(profiles)) or "none"
            msg = f"no profile {tenant!r} in {where} (profiles: {known}; built in: emulator)"
            raise ConfigError(msg)
        return _from_profile(tenant, profiles[tenant], env, source)
    if env.get("AZURE_TENANT_ID"):
        return _with_profile_rails(_from_environment(env), profiles, source)
    default = data.get("default")
    if isinstance(default, str) and default in profiles:
        return _from_profile(default, profiles[default], env, source)
    if len(profiles) == 1:
        (name,) = profiles
        return _from_profile(name, profiles[name], env, source)
    matching = [
        name
        for name, raw in profiles.items()
        if for_tenant
        and isinstance(raw, dict)
        and str(raw.get("tenant_id", "")).lower() == for_tenant.lower()
    ]
    if len(matching) == 1:
        return _from_profile(matching[0], profiles[matching[0]], env, source)
    msg = "no tenant configured: pass --tenant PROFILE or set AZURE_TENANT_ID"
    hint = (
        f"configure a profile in ./{PROFILE_FILE} (see the README, 'Connecting a real "
        "tenant'), or try the emulated tenant with --tenant emulator"
    )
    if len(profiles) > 1:
        msg = f"several profiles in {source} and no default: pass --tenant one of " + ", ".join(
            sorted(profiles)
        )
    raise ConfigError(msg, hint=hint)


def _cloud(name: Any, where: str) -> Cloud:
    key = str(name or "global")
    if key not in CLOUDS:
        msg = f"{where}: cloud {key!r} is not one of {', '.join(CLOUDS)}"
        raise ConfigError(msg)
    return CLOUDS[key]


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        msg = f"{where}: {key} must be a list of strings"
        raise ConfigError(msg)
    return tuple(value)


def _from_profile(name: str, raw: Any, env: Mapping[str, str], source: Path | None) -> Settings:
    where = f"{source}: [profiles.{name}]"
    if not isinstance(raw, dict):
        msg = f"{where} must be a table"
        raise ConfigError(msg)
    secret_keys = sorted(_SECRET_KEYS & set(raw))
    if secret_keys:
        msg = (
            f"{where}: {secret_keys[0]} must not be written in the profile; "
            "use client_secret_env (an environment variable) or client_secret_file"
        )
        raise ConfigError(msg)
    unknown = sorted(set(raw) - _PROFILE_KEYS)
    if unknown:
        msg = f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_PROFILE_KEYS))})"
        raise ConfigError(msg)
    tenant_id = raw.get("tenant_id")
    if not isinstance(tenant_id, str) or not tenant_id:
        msg = f"{where}: tenant_id is required"
        raise ConfigError(msg)
    try:
        auth = AuthMode(str(raw.get("auth", "client-secret")))
    except ValueError:
        msg = f"{where}: auth must be one of {', '.join(mode.value for mode in AuthMode)}"
        raise ConfigError(msg) from None
    client_id = raw.get("client_id")
    if auth is not AuthMode.MANAGED_IDENTITY and not client_id:
        msg = f"{where}: client_id is required for auth = {auth.value!r}"
        raise ConfigError(msg)
    secret: str | None = None
    if auth is AuthMode.CLIENT_SECRET:
        secret = _secret_from(raw, env, where)
    certificate = None
    password = None
    if auth is AuthMode.CERTIFICATE:
        if not raw.get("certificate"):
            msg = f"{where}: certificate (path of a PEM or PFX file) is required"
            raise ConfigError(msg)
        certificate = Path(str(raw["certificate"])).expanduser()
        password_env = raw.get("certificate_password_env")
        password = env.get(str(password_env)) if password_env else None
    limits = Limits(
        writes_per_150s=int(raw.get("writes_per_150s", 3000)),
        resource_units_per_10s=int(raw.get("resource_units_per_10s", 8000)),
        max_share=float(raw.get("max_share", 0.9)),
    )
    return Settings(
        profile=name,
        tenant_id=tenant_id,
        auth=auth,
        cloud=_cloud(raw.get("cloud"), where),
        client_id=str(client_id) if client_id else None,
        client_secret=secret,
        certificate_path=certificate,
        certificate_password=password,
        managed_identity_client_id=raw.get("managed_identity_client_id"),
        token_cache_path=Path(str(raw["token_cache"])).expanduser()
        if raw.get("token_cache")
        else None,
        protected_users=_strings(raw.get("protected_users"), where, "protected_users"),
        protected_groups=_strings(raw.get("protected_groups"), where, "protected_groups"),
        limits=limits,
        throttle_priority=raw.get("throttle_priority"),
    )


def _secret_from(raw: Mapping[str, Any], env: Mapping[str, str], where: str) -> str:
    variable = str(raw.get("client_secret_env") or "AZURE_CLIENT_SECRET")
    if raw.get("client_secret_file"):
        path = Path(str(raw["client_secret_file"])).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"{where}: cannot read client_secret_file {path}: {exc.strerror}"
            raise ConfigError(msg) from None
    value = env.get(variable)
    if not value:
        msg = f"{where}: the client secret is read from ${variable}, which is not set"
        raise ConfigError(msg)
    return value


def _from_environment(env: Mapping[str, str]) -> Settings:
    where = "environment"
    client_id = env.get("AZURE_CLIENT_ID")
    if env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        auth = AuthMode.CERTIFICATE
    elif env.get("AZURE_CLIENT_SECRET"):
        auth = AuthMode.CLIENT_SECRET
    else:
        auth = AuthMode.MANAGED_IDENTITY
    if auth is not AuthMode.MANAGED_IDENTITY and not client_id:
        msg = f"{where}: AZURE_CLIENT_ID is required with a secret or a certificate"
        raise ConfigError(msg)
    certificate = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
    return Settings(
        profile="environment",
        tenant_id=env["AZURE_TENANT_ID"],
        auth=auth,
        cloud=_cloud(env.get("ENTRA_BULK_CLOUD"), where),
        client_id=client_id,
        client_secret=env.get("AZURE_CLIENT_SECRET"),
        certificate_path=Path(certificate).expanduser() if certificate else None,
        certificate_password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
        managed_identity_client_id=client_id if auth is AuthMode.MANAGED_IDENTITY else None,
    )


def _with_profile_rails(
    settings: Settings, profiles: Mapping[str, Any], source: Path | None
) -> Settings:
    """Environment credentials keep the protections of every profile for the same tenant:
    a profile's rails apply to every plan, whichever way the run signs in."""
    users: dict[str, None] = {}
    groups: dict[str, None] = {}
    for name, raw in profiles.items():
        if not isinstance(raw, dict):
            continue
        if str(raw.get("tenant_id", "")).lower() != settings.tenant_id.lower():
            continue
        where = f"{source}: [profiles.{name}]"
        users.update(dict.fromkeys(_strings(raw.get("protected_users"), where, "protected_users")))
        groups.update(
            dict.fromkeys(_strings(raw.get("protected_groups"), where, "protected_groups"))
        )
    return replace(settings, protected_users=tuple(users), protected_groups=tuple(groups))


def emulator_settings(env: Mapping[str, str]) -> Settings:
    """The built-in `emulator` profile: a running emulator, or an in-process one.

    With `ENTRA_BULK_EMULATOR` (the path of an `emulator.json`) the settings are complete
    here; otherwise they name the persistent local tenant's folder and `graph.connect`
    starts an emulator there (and fills in the URLs).
    """
    connection = env.get(EMULATOR_ENV)
    if connection:
        return settings_from_connection_file(Path(connection))
    return Settings(
        profile=EMULATOR_PROFILE,
        tenant_id="",
        auth=AuthMode.CLIENT_SECRET,
        cloud=CLOUDS["global"],
        protected_groups=EMULATOR_PROTECTED_GROUPS,
        emulator=EmulatorTarget(state_dir=user_data_dir() / "emulator"),
    )


def settings_from_connection_file(path: Path) -> Settings:
    """Settings for the first app of a running emulator's `emulator.json`."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{EMULATOR_ENV}={path}: cannot read the emulator's connection file: {exc.strerror}"
        raise ConfigError(msg, hint="start one with: entra-bulk emulator serve") from None
    except ValueError:
        msg = f"{EMULATOR_ENV}={path}: not a connection file (invalid JSON)"
        raise ConfigError(msg) from None
    return settings_from_connection(info, connection_file=path)


def settings_from_connection(
    info: Mapping[str, Any], *, connection_file: Path | None = None, state_dir: Path | None = None
) -> Settings:
    """Settings from the content of an `emulator.json`."""
    app = info["apps"][0]
    limits = info.get("limits", {})
    return Settings(
        profile=EMULATOR_PROFILE,
        tenant_id=str(info["tenant_id"]),
        auth=AuthMode.CLIENT_SECRET,
        cloud=CLOUDS["global"],
        client_id=str(app["client_id"]),
        client_secret=app.get("client_secret"),
        protected_groups=EMULATOR_PROTECTED_GROUPS,
        limits=Limits(
            writes_per_150s=int(limits.get("writes_per_150s", 3000)),
            resource_units_per_10s=int(limits.get("resource_units_per_10s", 8000)),
            tenant_writes_per_300s=int(limits.get("tenant_writes_per_300s", 18000)),
            max_share=float(limits.get("max_share", EMULATOR_MAX_SHARE)),
            time_scale=float(info.get("time_scale", 1.0)),
        ),
        emulator=EmulatorTarget(connection_file=connection_file, state_dir=state_dir),
        graph_url_override=str(info["graph_url"]),
        authority_override=str(info["authority"]),
        ca_file=str(info["ca_file"]),
        managed_identity_endpoint=str(info.get("managed_identity_endpoint") or ""),
    )
