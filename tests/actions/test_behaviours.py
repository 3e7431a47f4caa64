"""Each action's pure behaviour: its diff text, its Graph steps, and its verification."""

from __future__ import annotations

import datetime as dt

from runner.actions import registry
from runner.actions.base import ChangeKind, Secret
from runner.actions.behaviours import BEHAVIOURS, behaviour, reads_for
from runner.actions.methods import DEFAULT_REFUSAL, is_default_refusal
from runner.graph.facts import GraphFailure
from runner.state import Method, UserState

SINCE = dt.datetime(2026, 11, 28, 12, 0, 0, 400000, tzinfo=dt.UTC)
MOBILE = Method(
    id="3179e48a-750b-4051-897c-87b9720928f7",
    kind="phone",
    label="mobile phone +1 4255550100",
    phone_type="mobile",
)
ALTERNATE = Method(
    id="b6332ec1-7057-4abe-9331-3d72feddfe41",
    kind="phone",
    label="alternate mobile phone +1 4255550101",
    phone_type="alternateMobile",
)
APP = Method(id="a1", kind="microsoftAuthenticator", label="Authenticator on iPhone 15")
OATH = Method(id="o1", kind="softwareOath", label="software OATH token")
FIDO = Method(id="f1", kind="fido2", label="security key YubiKey 5 NFC")
HW = Method(id="h1", kind="hardwareOath", label="hardware OATH token 123")


def _user(**changes: object) -> UserState:
    base: dict[str, object] = {
        "id": "5a1b0c3e-0000-4000-8000-000000000001",
        "upn": "adele.vance@contoso.com",
        "display_name": "Adele Vance",
        "account_enabled": True,
        "methods": (MOBILE, APP, OATH, FIDO),
        "preferred_method": "sms",
    }
    base.update(changes)
    return UserState(**base)  # type: ignore[arg-type]


def test_every_registered_action_has_a_behaviour() -> None:
    """The behaviour table covers exactly the registry's actions."""
    assert set(BEHAVIOURS) == set(registry.names())
    assert behaviour("revoke_mfa_sessions").name == "revoke_sessions"


def test_reregistration_deletes_the_portal_set_default_last() -> None:
    """Phone, Authenticator and OATH are deleted, FIDO2 kept, the default mobile last."""
    opts = registry.with_defaults("require_mfa_reregistration", None)
    action = behaviour("require_mfa_reregistration")
    change = action.diff(_user(), opts)
    assert change.kind is ChangeKind.CHANGE
    assert change.summary == (
        "will delete 3 methods: Authenticator on iPhone 15, software OATH token, "
        "mobile phone +1 4255550100 (default mobile phone +1 4255550100 last)"
    )
    steps = action.steps(_user(), opts, delegated=False)
    assert [(s.method, s.path, s.phase) for s in steps] == [
        (
            "DELETE",
            "/users/5a1b0c3e-0000-4000-8000-000000000001/authentication/"
            "microsoftAuthenticatorMethods/a1",
            0,
        ),
        (
            "DELETE",
            "/users/5a1b0c3e-0000-4000-8000-000000000001/authentication/softwareOathMethods/o1",
            0,
        ),
        (
            "DELETE",
            "/users/5a1b0c3e-0000-4000-8000-000000000001/authentication/"
            "phoneMethods/3179e48a-750b-4051-897c-87b9720928f7",
            2,
        ),
    ]
    assert all(step.done == frozenset({204, 404}) for step in steps)


def test_alternate_mobile_goes_before_mobile_and_hardware_oath_uses_beta() -> None:
    """An alternate mobile is deleted before the mobile; hardware OATH on the beta path."""
    state = _user(methods=(MOBILE, ALTERNATE, HW), preferred_method=None)
    steps = behaviour("require_mfa_reregistration").steps(
        state, registry.with_defaults("require_mfa_reregistration", None), delegated=False
    )
    assert [(s.key.split(":")[1], s.phase, s.version) for s in steps] == [
        ("phone", 0, "v1.0"),
        ("hardwareOath", 0, "beta"),
        ("phone", 1, "v1.0"),
    ]
    assert steps[0].path.endswith(ALTERNATE.id)


def test_nothing_to_delete_is_a_noop() -> None:
    """A user with only a FIDO2 key has nothing of the portal's set."""
    change = behaviour("require_mfa_reregistration").diff(
        _user(methods=(FIDO,)), registry.with_defaults("require_mfa_reregistration", None)
    )
    assert change.kind is ChangeKind.NOOP
    assert change.summary == (
        "no-op: no methods of kinds phone, microsoftAuthenticator, softwareOath, hardwareOath"
    )


def test_remove_auth_methods_by_kind() -> None:
    """remove_auth_methods deletes only the listed kinds."""
    opts = registry.with_defaults("remove_auth_methods", {"method_types": ["fido2"]})
    change = behaviour("remove_auth_methods").diff(_user(), opts)
    assert change.summary == "will delete 1 method: security key YubiKey 5 NFC"


def test_default_method_refusal_is_recognised() -> None:
    """Graph's 400 for deleting the default method is told apart from other 400s."""
    message = f"The requested authentication method id of [x] {DEFAULT_REFUSAL}, and cannot be"
    assert is_default_refusal(GraphFailure(status=400, code="badRequest", message=message))
    assert not is_default_refusal(GraphFailure(status=400, code="badRequest", message="other"))


def test_reset_password_app_only_patches_the_profile() -> None:
    """App-only: PATCH passwordProfile, password inserted by the engine, not repeatable."""
    action = behaviour("reset_password")
    opts = registry.with_defaults("reset_password", {"require_mfa_before_change": True})
    (step,) = action.steps(_user(), opts, delegated=False)
    assert (step.method, step.path, step.secret) == (
        "PATCH",
        "/users/5a1b0c3e-0000-4000-8000-000000000001",
        Secret.PASSWORD,
    )
    assert step.body == {
        "passwordProfile": {
            "forceChangePasswordNextSignIn": True,
            "forceChangePasswordNextSignInWithMfa": True,
        }
    }
    assert not action.repeatable


def test_reset_password_delegated_uses_the_operation() -> None:
    """Delegated: the resetPassword operation, polled until it ends."""
    (step,) = behaviour("reset_password").steps(
        _user(), registry.with_defaults("reset_password", None), delegated=True
    )
    assert step.path.endswith(
        "/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword"
    )
    assert step.poll and step.done == frozenset({202})


def test_reset_password_warns_for_synced_users() -> None:
    """A synced user gets the warning that Graph refuses the write."""
    change = behaviour("reset_password").diff(
        _user(synced=True), registry.with_defaults("reset_password", None)
    )
    assert change.warnings == (
        "synced from on-premises AD: Graph refuses password writes for it "
        "(reset it in on-premises AD instead)",
    )


def test_revoke_is_not_applicable_to_guests() -> None:
    """Guests' sessions are not revoked by Graph, so the action says so instead of running."""
    guest = _user(upn="ann_fabrikam.com#EXT#@contoso.onmicrosoft.com", user_type="Guest")
    change = behaviour("revoke_sessions").diff(guest, {})
    assert change.kind is ChangeKind.NOT_APPLICABLE


def test_disable_is_a_noop_when_already_disabled() -> None:
    """An account already disabled needs nothing."""
    action = behaviour("disable_account")
    state = _user(account_enabled=False)
    assert action.diff(state, {}).summary == "no-op: already disabled"
    assert action.steps(state, {}, delegated=False) == ()
    assert action.verified(state, {}, since=SINCE)


def test_app_passwords_are_manual_and_never_verified() -> None:
    """delete_app_passwords is a manual step: no request, never verified by Graph."""
    action = behaviour("delete_app_passwords")
    assert action.diff(_user(), {}).summary == "manual: Graph has no API to delete app passwords"
    assert action.steps(_user(), {}, delegated=False) == ()
    assert not action.verified(_user(), {}, since=SINCE)


def test_verification_compares_whole_seconds() -> None:
    """Graph's timestamps have whole seconds: a change in the intent's second counts."""
    state = _user(last_password_change="2026-11-28T12:00:00Z")
    assert behaviour("reset_password").verified(state, {}, since=SINCE)
    earlier = _user(last_password_change="2026-11-28T11:59:59Z")
    assert not behaviour("reset_password").verified(earlier, {}, since=SINCE)


def test_reads_are_the_union_of_the_actions_needs() -> None:
    """Planning reads methods and the default only when an action needs them."""
    assert reads_for(["revoke_sessions", "disable_account"]) == frozenset()
    assert {str(r) for r in reads_for(["require_mfa_reregistration", "set_per_user_mfa"])} == {
        "methods",
        "sign_in_preferences",
        "requirements",
    }
