"""Crash campaign (reliability.md F23, F24): the runner, a child process, is killed with
SIGKILL at every named point of `ENTRA_BULK_CRASH_AT` (first and later arrivals) and at
seeded random times, then resumed until the run ends; the emulated tenant, in this process,
keeps the ledger. CI runs a bounded campaign; `ENTRA_BULK_FULL=1` runs 1,000 trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.campaigns.campaign_support import CrashCampaign, crash_campaign, table
from tests.campaigns.conftest import Figures

ZERO = (
    "lost",
    "duplicated non-repeatable effects",
    "items unknown after",
    "illegal moves",
    "sends without a committed intent",
    "temporary files left",
    "passwords set but not in secrets.csv",
    "wrong state at the kill (F24)",
    "trials with a problem",
    "secret canaries found",
)


def _report(campaign: CrashCampaign, figures: Figures, title: str) -> None:
    numbers = campaign.figures()
    text = table([{"figure": k, "value": v} for k, v in numbers.items()], ["figure", "value"])
    text += "\n\n" + table(campaign.per_point(), list(campaign.per_point()[0]))
    figures(title, text)
    problems = campaign.problems()
    assert not problems, "\n".join(problems[:30])
    for name in ZERO:
        assert numbers[name] == 0, (name, numbers[name])
    assert numbers["integrity_check ok"] == f"{numbers['trials']}/{numbers['trials']}"


def test_crash_campaign_loses_nothing_and_repeats_nothing(
    tmp_path: Path, tenant_template: Path, figures: Figures
) -> None:
    """Killed at each named point (first and a later arrival) and at 16 random times, every
    run resumes to its end: nothing lost, no reset or pass repeated, journal sound."""
    campaign = crash_campaign(tmp_path, tenant_template, per_point=2, random_kills=16)
    assert campaign.figures()["of which killed at their point"] >= 6
    _report(campaign, figures, "crash campaign (CI size)")


@pytest.mark.slow
def test_full_crash_campaign(tmp_path: Path, tenant_template: Path, figures: Figures) -> None:
    """The full size: 6 named points × 100 trials and 400 random SIGKILLs (1,000 trials)."""
    campaign = crash_campaign(tmp_path, tenant_template, per_point=100, random_kills=400)
    _report(campaign, figures, "crash campaign (full size)")
