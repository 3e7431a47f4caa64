"""Fault rules: parsing with clear errors, path matching, counts, skips and seeded rates."""

from __future__ import annotations

import pytest

from runner.emulator.faults import FaultInjector, FaultKind, FaultRule, FaultRuleError


def test_unknown_kind_names_the_rule_and_the_choices() -> None:
    """A misspelt kind is refused naming the rule index and the valid kinds."""
    with pytest.raises(FaultRuleError) as info:
        FaultRule.parse({"kind": "status_429"}, index=3)
    assert str(info.value).startswith("fault rule 3: kind 'status_429' is not one of status, ")


def test_status_needs_a_status_code() -> None:
    """kind=status without a numeric status is refused."""
    with pytest.raises(FaultRuleError, match="needs a numeric 'status'"):
        FaultRule.parse({"kind": "status"})


@pytest.mark.parametrize("rate", [-0.1, 1.5, "often"])
def test_rate_must_be_a_probability(rate: object) -> None:
    """rate outside [0, 1] is refused."""
    with pytest.raises(FaultRuleError, match="rate must be a number between 0 and 1"):
        FaultRule.parse({"kind": "drop_after", "rate": rate})


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/users/*/revokeSignInSessions", "/users/abc/revokeSignInSessions", True),
        ("/users/*/revokeSignInSessions", "/users/a/b/revokeSignInSessions", False),
        ("/users/**", "/users/a/authentication/phoneMethods/x", True),
        ("^/users/[^/]+$", "/users/abc", True),
        ("^/users/[^/]+$", "/users/abc/memberOf", False),
        ("**", "/anything", True),
    ],
)
def test_path_patterns(pattern: str, path: str, matches: bool) -> None:
    """Globs (* in a segment, ** across) and ^regex select paths after the version."""
    rule = FaultRule.parse({"kind": "drop_after", "path": pattern})
    assert rule.matches("POST", path) is matches


def test_method_filter() -> None:
    """A rule for PATCH does not fire on GET."""
    rule = FaultRule.parse({"kind": "drop_after", "method": "patch"})
    assert rule.matches("PATCH", "/users/x")
    assert not rule.matches("GET", "/users/x")


def test_count_and_skip() -> None:
    """skip lets the first N through, count injects the next M, then nothing."""
    injector = FaultInjector(
        [FaultRule.parse({"kind": "status", "status": 503, "count": 2, "skip": 1})]
    )
    fired = [injector.pick(method="GET", path="/users/x", in_batch=False) for _ in range(5)]
    assert [fault is not None for fault in fired] == [False, True, True, False, False]
    (rule,) = injector.rules()
    assert (rule["matched"], rule["injected"]) == (5, 2)


def test_rate_is_seeded_and_repeatable() -> None:
    """The same seed injects at the same requests; about `rate` of them."""

    def pattern(seed: int) -> list[bool]:
        injector = FaultInjector(
            [FaultRule.parse({"kind": "status", "status": 500, "rate": 0.3, "seed": seed})]
        )
        return [
            injector.pick(method="GET", path="/x", in_batch=False) is not None for _ in range(1000)
        ]

    assert pattern(5) == pattern(5)
    assert pattern(5) != pattern(6)
    assert 250 < sum(pattern(5)) < 350


def test_envelope_faults_only_hit_batch_envelopes() -> None:
    """batch_* kinds fire on /$batch only; status kinds never fire on the envelope."""
    injector = FaultInjector(
        [
            FaultRule.parse({"kind": "batch_missing_items"}),
            FaultRule.parse({"kind": "status", "status": 503}),
        ]
    )
    envelope = injector.pick(method="POST", path="/$batch", in_batch=False)
    item = injector.pick(method="GET", path="/users/x", in_batch=True)
    assert envelope is not None and envelope.kind is FaultKind.BATCH_MISSING_ITEMS
    assert item is not None and item.kind is FaultKind.STATUS


def test_connection_faults_never_fire_inside_a_batch() -> None:
    """A reset or a drop applies to a whole connection, so batch items skip those rules."""
    injector = FaultInjector([FaultRule.parse({"kind": "reset_before"})])
    assert injector.pick(method="GET", path="/users/x", in_batch=True) is None
    assert injector.pick(method="POST", path="/$batch", in_batch=False) is not None
