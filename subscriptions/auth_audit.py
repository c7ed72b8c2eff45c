"""Sign-in events in the audit trail: receivers for Django's, allauth's and allauth MFA's signals.

Connected in SubscriptionsConfig.ready(). Each writes through `audit_record`; none
records a password or a code, and a failed sign-in keeps only the first characters
of the name that was typed (it may be a mistyped password).
"""

from typing import Any

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth import signals as auth_signals
from django.contrib.auth.models import User
from django.http import HttpRequest

from subscriptions.abuse import client_ip
from subscriptions.audit import audit_record

ATTEMPTED_NAME_MAX = 64


def _address(request: HttpRequest | None) -> str:
    return client_ip(request) if request is not None else ""


def _record(user: Any, action: str, request: HttpRequest | None, **details: Any) -> None:
    audit_record(
        actor=user,
        action=action,
        target_type="user",
        target_id=getattr(user, "pk", None),
        client_address=_address(request),
        **details,
    )


def on_signed_in(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    # allauth's signal, sent once the whole sign-in (password and second factor) is done;
    # the test client's force_login does not send it.
    _record(user, "staff_signed_in", request)


def on_signed_out(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    if user is None:
        return
    reason = getattr(request, "staff_sign_out_reason", "signed_out")
    _record(user, "staff_signed_out", request, reason=reason)


def on_sign_in_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kw: Any) -> None:
    attempted = str(credentials.get("username") or credentials.get("email") or "")[:ATTEMPTED_NAME_MAX]
    audit_record(actor=None, action="staff_sign_in_failed", attempted_name=attempted, client_address=_address(request))


def sign_in_locked_out(*, request: HttpRequest, attempted: str) -> None:
    """Called by the account adapter when the failed-sign-in limit refuses an attempt."""
    audit_record(
        actor=None,
        action="staff_sign_in_locked_out",
        attempted_name=attempted[:ATTEMPTED_NAME_MAX],
        client_address=_address(request),
    )


def _authenticator_event(action: str) -> Any:
    def receiver(sender: Any, request: HttpRequest, user: User, authenticator: Authenticator, **kwargs: Any) -> None:
        audit_record(
            actor=user, action=action, target_type="authenticator", target_id=authenticator.pk,
            kind=authenticator.type, client_address=_address(request),
        )  # fmt: skip

    receiver.__name__ = f"on_{action}"
    return receiver


on_authenticator_added = _authenticator_event("staff_authenticator_added")
on_authenticator_removed = _authenticator_event("staff_authenticator_removed")
on_recovery_codes_generated = _authenticator_event("staff_recovery_codes_generated")
on_second_factor_failed = _authenticator_event("staff_second_factor_failed")


def on_authenticator_used(
    sender: Any, request: HttpRequest, user: User, authenticator: Authenticator, **kw: Any
) -> None:
    # A recovery code is single-use and the last way in: each one used is worth a line.
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        # allauth marks the code used on a fresh copy of the row; read that one.
        unused = len(Authenticator.objects.get(pk=authenticator.pk).wrap().get_unused_codes())
        audit_record(
            actor=user, action="staff_recovery_code_used", target_type="authenticator", target_id=authenticator.pk,
            codes_left=unused, reauthenticated=bool(kw.get("reauthenticated")), client_address=_address(request),
        )  # fmt: skip


def on_password_changed(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    _record(user, "staff_password_changed", request)


def on_password_reset(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    _record(user, "staff_password_reset", request)


def connect() -> None:
    pairs = [
        (account_signals.user_logged_in, on_signed_in),
        (auth_signals.user_logged_out, on_signed_out),
        (auth_signals.user_login_failed, on_sign_in_failed),
        (account_signals.password_changed, on_password_changed),
        (account_signals.password_set, on_password_changed),
        (account_signals.password_reset, on_password_reset),
        (mfa_signals.authenticator_added, on_authenticator_added),
        (mfa_signals.authenticator_removed, on_authenticator_removed),
        (mfa_signals.authenticator_reset, on_recovery_codes_generated),
        (mfa_signals.authenticator_used, on_authenticator_used),
        (mfa_signals.authentication_failed, on_second_factor_failed),
    ]
    for signal, receiver in pairs:
        signal.connect(receiver, dispatch_uid=f"tidings.auth_audit.{receiver.__name__}")
