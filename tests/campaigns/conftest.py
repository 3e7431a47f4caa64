"""The reliability campaigns: bounded in CI, full size with `ENTRA_BULK_FULL=1`.

Tests marked `slow` run only when `ENTRA_BULK_FULL=1` is set (`ENTRA_BULK_FULL=1 pytest -m
slow tests/campaigns` runs the full-size campaigns). Every campaign records its figures with
`figures(title, text)`; they are printed together at the end of the session, under
"Reliability campaigns", whatever pytest captured (with xdist too: they travel in the test
report's user properties).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.emulator import Emulator, EmulatorConfig
from tests.campaigns.campaign_support import FULL

FIGURES_KEY = "campaign_figures"
_collected: list[tuple[str, str]] = []

Figures = Callable[[str, str], None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the full-size campaigns unless ENTRA_BULK_FULL=1."""
    if FULL:
        return
    skip = pytest.mark.skip(reason="full-size campaign: set ENTRA_BULK_FULL=1 to run it")
    for item in items:
        if "slow" in item.keywords and "campaigns" in item.nodeid:
            item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the figures a campaign test recorded (in the controller under xdist too)."""
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == FIGURES_KEY and isinstance(value, tuple):
            _collected.append((str(value[0]), str(value[1])))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every campaign's figures at the end of the session."""
    if not _collected:
        return
    terminalreporter.section("Reliability campaigns")
    for title, text in _collected:
        terminalreporter.write_line(f"-- {title}")
        for line in text.splitlines():
            terminalreporter.write_line(f"   {line}")


@pytest.fixture
def figures(record_property: Callable[[str, object], None]) -> Figures:
    """`figures(title, text)`: print a campaign's figures and keep them for the summary."""

    def keep(title: str, text: str) -> None:
        print(f"-- {title}\n{text}")
        record_property(FIGURES_KEY, (title, text))

    return keep


@pytest.fixture(scope="session")
def tenant_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded 60-user tenant's state folder (keys and certificates made once per session)."""
    folder = tmp_path_factory.mktemp("campaign-template")
    with Emulator(EmulatorConfig(state_dir=folder, users=60, seed=1)):
        pass
    return folder


@pytest.fixture
def template_copy(tenant_template: Path, tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Fresh copies of the template state folder, one per name."""
    made: list[Path] = []

    def copy(name: str) -> Path:
        target = tmp_path / f"template-{name}"
        shutil.copytree(tenant_template, target)
        made.append(target)
        return target

    yield copy
