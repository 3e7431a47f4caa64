"""Profiles, environment variables, clouds and the built-in emulator profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.config import CLOUDS, AuthMode, resolve
from runner.errors import ConfigError

TENANT = "00000000-0000-0000-0000-000000000001"
CLIENT = "11111111-1111-1111-1111-111111111111"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "entra-bulk.toml"
    path.write_text(text)
    return path


def test_profile_with_certificate_and_cloud(tmp_path: Path) -> None:
    """A certificate profile in the US Gov cloud sets the authority and Graph endpoint."""
    path = _write(
        tmp_path,
        f"""
[profiles.contoso]
tenant_id = "{TENANT}"
client_id = "{CLIENT}"
auth = "certificate"
certificate = "~/certs/contoso.pem"
cloud = "usgov"
protected_users = ["breakglass1@contoso.onmicrosoft.com"]
protected_groups = ["Emergency Access Accounts"]
""",
    )
    settings = resolve(tenant="contoso", config_path=path, env={})
    assert settings.auth is AuthMode.CERTIFICATE
    assert settings.graph_url == "https://graph.microsoft.us"
    assert settings.authority == f"https://login.microsoftonline.us/{TENANT}"
    assert settings.graph_scope == "https://graph.microsoft.us/.default"
    assert settings.certificate_path == Path("~/certs/contoso.pem").expanduser()
    assert settings.protected_users == ("breakglass1@contoso.onmicrosoft.com",)


@pytest.mark.parametrize(
    ("cloud", "graph", "authority"),
    [
        ("global", "https://graph.microsoft.com", "https://login.microsoftonline.com"),
        ("usgov", "https://graph.microsoft.us", "https://login.microsoftonline.us"),
        ("usgov-dod", "https://dod-graph.microsoft.us", "https://login.microsoftonline.us"),
        ("china", "https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
    ],
)
def test_clouds(cloud: str, graph: str, authority: str) -> None:
    """Each national cloud has its Graph endpoint and authority host (graph-reference §13)."""
    assert (CLOUDS[cloud].graph_url, CLOUDS[cloud].authority_host) == (graph, authority)


def test_secret_comes_from_the_environment(tmp_path: Path) -> None:
    """A client-secret profile reads the secret from the variable it names."""
    path = _write(
        tmp_path,
        f'[profiles.p]\ntenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\n'
        'client_secret_env = "MY_SECRET"\n',
    )
    settings = resolve(tenant="p", config_path=path, env={"MY_SECRET": "s3cr3t-value"})
    assert settings.client_secret == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)


def test_secret_written_in_the_profile_is_refused(tmp_path: Path) -> None:
    """A secret in the profile's text is an error that says where secrets go."""
    path = _write(
        tmp_path,
        f'[profiles.p]\ntenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\nclient_secret = "x"\n',
    )
    with pytest.raises(ConfigError) as info:
        resolve(tenant="p", config_path=path, env={})
    assert str(info.value) == (
        f"{path}: [profiles.p]: client_secret must not be written in the profile; "
        "use client_secret_env (an environment variable) or client_secret_file"
    )


def test_missing_secret_variable_is_named(tmp_path: Path) -> None:
    """Without the secret's variable the error names it."""
    path = _write(tmp_path, f'[profiles.p]\ntenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\n')
    with pytest.raises(ConfigError) as info:
        resolve(tenant="p", config_path=path, env={})
    assert str(info.value) == (
        f"{path}: [profiles.p]: the client secret is read from $AZURE_CLIENT_SECRET, "
        "which is not set"
    )


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    """Asking for a profile that is not there names the file and the profiles it has."""
    path = _write(tmp_path, f'[profiles.a]\ntenant_id = "{TENANT}"\nauth = "managed-identity"\n')
    with pytest.raises(ConfigError) as info:
        resolve(tenant="b", config_path=path, env={})
    assert str(info.value) == f"no profile 'b' in {path} (profiles: a; built in: emulator)"


def test_azure_identity_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no --tenant, AZURE_* variables describe the tenant and the credential."""
    monkeypatch.chdir(tmp_path)
    settings = resolve(
        tenant=None,
        config_path=None,
        env={
            "AZURE_TENANT_ID": TENANT,
            "AZURE_CLIENT_ID": CLIENT,
            "AZURE_CLIENT_SECRET": "from-env",
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        },
    )
    assert (settings.profile, settings.auth, settings.client_secret) == (
        "environment",
        AuthMode.CLIENT_SECRET,
        "from-env",
    )


def test_environment_credentials_keep_the_profile_rails(tmp_path: Path) -> None:
    """AZURE_* credentials for a tenant with a profile still protect that profile's users and
    groups; another tenant's profile adds nothing."""
    path = _write(
        tmp_path,
        f'[profiles.prod]\ntenant_id = "{TENANT.upper()}"\nauth = "managed-identity"\n'
        'protected_users = ["bg1@contoso.com"]\nprotected_groups = ["Emergency Access"]\n'
        '[profiles.other]\ntenant_id = "00000000-0000-0000-0000-000000000009"\n'
        'auth = "managed-identity"\nprotected_users = ["someone@fabrikam.com"]\n',
    )
    env = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": "s"}
    settings = resolve(tenant=None, config_path=path, env=env)
    assert (settings.profile, settings.protected_users, settings.protected_groups) == (
        "environment",
        ("bg1@contoso.com",),
        ("Emergency Access",),
    )


def test_a_plan_or_run_chooses_its_tenant_when_nothing_else_does(tmp_path: Path) -> None:
    """Several profiles and no default: the one for the plan's tenant id; an emulated plan
    goes to the emulated tenant unless --tenant or AZURE_TENANT_ID says otherwise."""
    path = _write(
        tmp_path,
        f'[profiles.prod]\ntenant_id = "{TENANT}"\nauth = "managed-identity"\n'
        '[profiles.test]\ntenant_id = "00000000-0000-0000-0000-000000000009"\n'
        'auth = "managed-identity"\n',
    )
    assert resolve(tenant=None, config_path=path, env={}, for_tenant=TENANT).profile == "prod"
    emulated = resolve(tenant=None, config_path=path, env={}, emulated=True)
    assert emulated.profile == "emulator"
    chosen = resolve(tenant="test", config_path=path, env={}, emulated=True)
    assert chosen.profile == "test"
    with pytest.raises(ConfigError):
        resolve(tenant=None, config_path=path, env={}, for_tenant=CLIENT)


def test_no_tenant_names_both_ways_forward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No profile and no credentials: the error says configure a profile or use the emulator."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    with pytest.raises(ConfigError) as info:
        resolve(tenant=None, config_path=None, env={})
    assert str(info.value) == "no tenant configured: pass --tenant PROFILE or set AZURE_TENANT_ID"
    assert info.value.hint == (
        "configure a profile in ./entra-bulk.toml (see the README, 'Connecting a real tenant'), "
        "or try the emulated tenant with --tenant emulator"
    )


def test_emulator_profile_from_connection_file(tmp_path: Path) -> None:
    """ENTRA_BULK_EMULATOR points the emulator profile at a running emulator's first app."""
    info = {
        "tenant_id": TENANT,
        "graph_url": "http://127.0.0.1:1",
        "authority": f"https://127.0.0.1:2/{TENANT}",
        "ca_file": "/x/ca.pem",
        "managed_identity_endpoint": "http://127.0.0.1:1/metadata/identity/oauth2/token",
        "admin_url": "http://127.0.0.1:1/_emulator",
        "time_scale": 10.0,
        "limits": {
            "tenant_size": "large",
            "resource_units_per_10s": 8000,
            "writes_per_150s": 3000,
            "tenant_writes_per_300s": 18000,
        },
        "apps": [
            {
                "name": "entra-bulk-admin",
                "client_id": CLIENT,
                "client_secret": "emu-secret",
                "certificate": None,
                "permissions": [],
                "directory_roles": [],
            }
        ],
    }
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(info))
    settings = resolve(tenant="emulator", config_path=None, env={"ENTRA_BULK_EMULATOR": str(path)})
    assert settings.is_emulator
    assert settings.graph_url == "http://127.0.0.1:1"
    assert settings.authority == f"https://127.0.0.1:2/{TENANT}"
    assert settings.limits.time_scale == 10.0
    assert settings.protected_groups == ("Emergency Access Accounts",)


def test_emulator_profile_without_variable_uses_the_local_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ENTRA_BULK_EMULATOR the profile names the persistent local tenant's folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = resolve(tenant="emulator", config_path=None, env={})
    assert settings.emulator is not None
    assert settings.emulator.state_dir == tmp_path / "data" / "entra-bulk" / "emulator"
