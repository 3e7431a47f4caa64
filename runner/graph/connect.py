"""The one place that decides real Graph or the emulated tenant, and opens a connection.

    with connect(settings, prompt=console.info) as connection:
        connection.client      # GraphClient
        connection.settings    # complete settings (URLs filled in for an in-process emulator)
        connection.tokens      # TokenProvider

For the built-in `emulator` profile without `ENTRA_BULK_EMULATOR`, an emulated tenant is
started inside the command over the persistent local tenant (created from the default seed
on first use), and stopped when the connection closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.config import Settings, settings_from_connection, user_state_dir
from runner.graph.auth import Prompt, TokenProvider, token_provider
from runner.graph.client import GraphClient, Timeouts, TraceHook

if TYPE_CHECKING:
    from runner.emulator import Emulator


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """An open connection to one tenant."""

    settings: Settings
    tokens: TokenProvider
    client: GraphClient


def _start_local_emulator(state_dir: Path) -> tuple[Emulator, Settings]:
    from runner.emulator import DATABASE_FILE, Emulator
    from runner.emulator.config import DEFAULT_SEED, DEFAULT_USERS, EmulatorConfig
    from runner.emulator.store import Store

    users, seed = DEFAULT_USERS, DEFAULT_SEED
    database = state_dir / DATABASE_FILE
    if database.exists():
        store = Store(database)
        try:
            users = int(store.meta("users") or users)
            seed = int(store.meta("seed") or seed)
        finally:
            store.close()
    emulator = Emulator(EmulatorConfig(state_dir=state_dir, users=users, seed=seed))
    emulator.start()
    return emulator, settings_from_connection(emulator.info, state_dir=state_dir)


@contextmanager
def connect(
    settings: Settings,
    *,
    prompt: Prompt | None = None,
    interactive: bool = False,
    trace: TraceHook | None = None,
    timeouts: Timeouts | None = None,
) -> Iterator[Connection]:
    """Open a connection (starting an in-process emulator when the profile asks for one)."""
    emulator: Emulator | None = None
    target = settings.emulator
    if target is not None and target.state_dir is not None and not settings.graph_url_override:
        emulator, settings = _start_local_emulator(target.state_dir)
    try:
        tokens = token_provider(
            settings,
            prompt=prompt,
            interactive=interactive,
            cache_path=user_state_dir() / "token-cache" / f"{settings.profile}.json",
        )
        client = GraphClient(
            root_url=settings.graph_url,
            token=tokens.access_token,
            timeouts=timeouts,
            verify=settings.ca_file or True,
            trace=trace,
            throttle_priority=settings.throttle_priority,
        )
        try:
            yield Connection(settings=settings, tokens=tokens, client=client)
        finally:
            client.close()
    finally:
        if emulator is not None:
            emulator.stop()
