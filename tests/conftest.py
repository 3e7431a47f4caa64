"""Shared fixtures: an emulated tenant on loopback, and HTTP clients that talk to it.

Generating a tenant's keys and certificates costs a few hundred milliseconds, so one
template state folder per (users, seed) is made per session and copied for each test: every
test gets its own tenant, fresh, in its own folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator, EmulatorConfig

EmulatorFactory = Callable[..., Emulator]


@pytest.fixture(scope="session")
def _tenant_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], Path]:
    return {}


@pytest.fixture
def emulator_factory(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _tenant_templates: dict[tuple[int, int], Path],
) -> Iterator[EmulatorFactory]:
    """Start emulated tenants (stopped at the end of the test): `factory(users=60, ...)`."""
    started: list[Emulator] = []

    def factory(
        *, users: int = 60, seed: int = 1, name: str = "tenant", **options: Any
    ) -> Emulator:
        key = (users, seed)
        template = _tenant_templates.get(key)
        if template is None:
            template = tmp_path_factory.mktemp(f"template-{users}-{seed}")
            with Emulator(EmulatorConfig(state_dir=template, users=users, seed=seed)):
                pass
            _tenant_templates[key] = template
        state = tmp_path / name
        shutil.copytree(template, state)
        config = EmulatorConfig(state_dir=state, users=users, seed=seed, **options)
        emu = Emulator(config)
        emu.start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> Emulator:
    """A fresh emulated tenant of 60 users (seed 1), throttling on, no latency."""
    return emulator_factory()


@pytest.fixture
def graph(emulator: Emulator) -> Iterator[httpx.Client]:
    """An httpx client on `/v1.0` of the emulated tenant, as the admin app (all permissions)."""
    token = emulator.mint_app_token("entra-bulk-admin")
    with httpx.Client(
        base_url=f"{emulator.graph_url}/v1.0",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def admin(emulator: Emulator) -> Iterator[httpx.Client]:
    """An httpx client on the emulator's admin API (`/_emulator`)."""
    with httpx.Client(base_url=emulator.admin_url, timeout=10) as client:
        yield client
