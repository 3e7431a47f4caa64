"""The batched reader against the emulated tenant: Graph's clock as the reads saw it."""

from __future__ import annotations

import datetime as dt
import time

from runner.config import settings_from_connection
from runner.emulator import Emulator
from runner.engine.pacer import Pacer
from runner.engine.reader import Read, Reader
from runner.graph.client import GraphClient


def test_graphs_clock_moves_on_from_the_last_answers_date(emulator: Emulator) -> None:
    """server_now is the last answer's Date plus the time since it came, never ahead of Graph:
    an intent dated after a pause is not dated at the last answer."""
    settings = settings_from_connection(emulator.info)
    token = emulator.mint_app_token()
    with GraphClient(root_url=emulator.graph_url, token=lambda **_: token) as client:
        reader = Reader(client, Pacer(settings.limits))
        assert reader.server_now() is None
        reader.run([Read(id="org", url="/organization?$select=id")])
        date = reader.server_date
        assert date is not None
        time.sleep(1.5)
        now = reader.server_now()
        assert now is not None
        assert now - date >= dt.timedelta(seconds=1.5)
        assert now <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
