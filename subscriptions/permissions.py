"""May this member do this to this object? The one place staff access is decided.

A staff member acts in a campaign only through a Membership of that campaign, and
only with the permissions it grants (models.staff.Permission). Platform operators
(superusers) hold every permission in every campaign; they are few, and audited
like everyone else. Every campaign or object id that comes back from a browser is
checked here, on the server, against the member's campaigns: a miss is a 404 (the
object does not exist for them) and is recorded in the audit trail.
"""

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, QuerySet
from django.http import Http404

from subscriptions.audit import audit_record
from subscriptions.models import Campaign, Membership, Permission

StaffUser = User | AnonymousUser


def is_operator(user: StaffUser) -> bool:
    return bool(user.is_active and user.is_superuser)


def campaign_ids(user: StaffUser, permission: str | None = None) -> set[int]:
    """The campaigns `user` may act in with `permission` (any membership when None)."""
    if not user.is_authenticated or not user.is_active:
        return set()
    if is_operator(user):
        return set(Campaign.objects.values_list("pk", flat=True))
    memberships = Membership.objects.filter(user_id=user.pk).values_list("campaign_id", "permissions")
    return {cid for cid, granted in memberships if permission is None or permission in granted}


def permissions_by_campaign(user: StaffUser) -> dict[int, set[str]]:
    """Every campaign `user` belongs to (operators: all), with the permissions held in
    each, in one query however many there are."""
    if not user.is_authenticated or not user.is_active:
        return {}
    if is_operator(user):
        return {pk: set(Permission.values) for pk in Campaign.objects.values_list("pk", flat=True)}
    memberships = Membership.objects.filter(user_id=user.pk).values_list("campaign_id", "permissions")
    return {cid: set(granted) for cid, granted in memberships}


def permissions_in(user: StaffUser, campaign_id: int) -> set[str]:
    """Every permission `user` holds in one campaign."""
    if not user.is_authenticated or not user.is_active:
        return set()
    if is_operator(user):
        return set(Permission.values)
    granted = Membership.objects.filter(user_id=user.pk, campaign_id=campaign_id).values_list("permissions", flat=True)
    return set(granted.first() or ())


def has_permission(user: StaffUser, campaign_id: int | None, permission: str) -> bool:
    return campaign_id is not None and permission in permissions_in(user, campaign_id)


def has_any(user: StaffUser, permission: str | None = None) -> bool:
    """Whether `user` holds `permission` (or any membership) in at least one campaign."""
    return bool(campaign_ids(user, permission))


def scoped[M: Model](user: StaffUser, queryset: QuerySet[M], permission: str | None, *, via: str) -> QuerySet[M]:
    """`queryset` narrowed to rows whose campaign (reached by the lookup `via`, e.g.
    "campaign" or "topic__campaign") the user may act in with `permission`."""
    if is_operator(user):
        return queryset
    return queryset.filter(**{f"{via}__in": campaign_ids(user, permission)})


def refuse(user: StaffUser, *, what: str, object_id: object, campaign_id: int | None = None) -> Http404:
    """Record a refused attempt and return the 404 to raise: to the member, an object
    of another campaign does not exist."""
    audit_record(
        actor=user, action="access_refused", campaign_id=campaign_id,
        target_type=what, target_id=object_id if isinstance(object_id, int) else None, asked_for=str(object_id)[:80],
    )  # fmt: skip
    return Http404(f"No {what} {object_id}.")


def require(user: StaffUser, campaign_id: int | None, permission: str, *, what: str, object_id: object) -> None:
    """Raise (and audit) unless `user` holds `permission` in the object's campaign."""
    if not has_permission(user, campaign_id, permission):
        raise refuse(user, what=what, object_id=object_id, campaign_id=campaign_id)


def only_known_permissions(values: Iterable[str]) -> list[str]:
    """The permissions among `values`, in their defined order (a browser may send anything)."""
    wanted = set(values)
    return [value for value in Permission.values if value in wanted]


# --- The Django admin ---------------------------------------------------------------------
# What a team member needs, in an object's campaign, for each admin page and action: keyed by
# (model name, "view" | "add" | "change" | "delete" | an admin action's name). A member holding
# any one of the listed permissions may; ANY_MEMBER is any membership at all. A key not listed
# is for platform operators only. Some things nobody may do, operators included (editing the
# audit trail, consent evidence or suppressions): those ModelAdmins say no before asking here.
ANY_MEMBER: frozenset[str] = frozenset({"*"})
_P = Permission
ADMIN_RULES: dict[tuple[str, str], frozenset[str]] = {
    ("campaign", "view"): ANY_MEMBER,
    ("campaign", "change"): frozenset({_P.MANAGE}),
    ("campaign", "draft_end_notice"): frozenset({_P.DRAFT}),
    ("topic", "view"): ANY_MEMBER,
    ("topic", "add"): frozenset({_P.MANAGE}),
    ("topic", "change"): frozenset({_P.MANAGE}),
    ("topic", "draft_alert"): frozenset({_P.DRAFT}),
    ("signupform", "view"): ANY_MEMBER,
    ("signupform", "add"): frozenset({_P.MANAGE}),
    ("signupform", "change"): frozenset({_P.MANAGE}),
    ("privacynotice", "view"): ANY_MEMBER,
    ("privacynotice", "add"): frozenset({_P.MANAGE}),
    ("mailing", "view"): frozenset({_P.DASHBOARD, _P.DRAFT, _P.SEND}),
    ("mailing", "add"): frozenset({_P.DRAFT}),
    ("mailing", "change"): frozenset({_P.DRAFT}),
    ("mailing", "delete"): frozenset({_P.DRAFT}),
    ("mailing", "send_now"): frozenset({_P.SEND}),
    ("mailing", "schedule"): frozenset({_P.SEND}),
    ("mailing", "cancel"): frozenset({_P.SEND}),
    ("mailing", "approve"): frozenset({_P.SEND}),
    ("mailing", "send_test_to_me"): frozenset({_P.DRAFT, _P.SEND}),
    ("mailing", "preview_as_person"): frozenset({_P.DATA_REQUESTS}),
    ("subscriber", "view"): frozenset({_P.DATA_REQUESTS}),
    ("subscriber", "data_request"): frozenset({_P.DATA_REQUESTS}),
    ("subscriber", "find"): frozenset({_P.DATA_REQUESTS}),
    ("subscription", "view"): frozenset({_P.DATA_REQUESTS}),
    ("consentevent", "view"): frozenset({_P.DATA_REQUESTS}),
    ("suppression", "view"): frozenset({_P.DATA_REQUESTS}),
    ("auditevent", "view"): frozenset({_P.DATA_REQUESTS}),
    ("dailystat", "view"): frozenset({_P.DASHBOARD}),
    ("delivery", "view"): frozenset({_P.DASHBOARD, _P.SEND}),
}


def campaign_ids_any(user: StaffUser, permissions: frozenset[str]) -> set[int]:
    """The campaigns where `user` holds at least one of `permissions` (ANY_MEMBER: any membership)."""
    if permissions == ANY_MEMBER or is_operator(user):
        return campaign_ids(user)
    if not user.is_authenticated or not user.is_active or not permissions:
        return set()
    memberships = Membership.objects.filter(user_id=user.pk).values_list("campaign_id", "permissions")
    return {cid for cid, granted in memberships if permissions.intersection(granted)}


def admin_campaign_ids(user: StaffUser, model_name: str, action: str) -> set[int]:
    """The campaigns where `user` may do `action` to `model_name` rows in the admin."""
    if is_operator(user):
        return campaign_ids(user)
    return campaign_ids_any(user, ADMIN_RULES.get((model_name, action), frozenset()))


def admin_allows(user: StaffUser, model_name: str, action: str, campaign_id: int | None = None) -> bool:
    """May `user` do `action` to `model_name` rows: in one campaign, or (None) in any of theirs."""
    if is_operator(user):
        return True
    allowed = admin_campaign_ids(user, model_name, action)
    return bool(allowed) if campaign_id is None else campaign_id in allowed


def admin_scoped[M: Model](user: StaffUser, queryset: QuerySet[M], action: str, *, via: str) -> QuerySet[M]:
    """`queryset` narrowed to the rows whose campaign (by the lookup `via`) lets `user` do `action`."""
    if is_operator(user):
        return queryset
    model_name = queryset.model._meta.model_name or ""
    return queryset.filter(**{f"{via}__in": admin_campaign_ids(user, model_name, action)})


def may_use_admin(user: StaffUser) -> bool:
    """Active staff who are operators or belong to at least one campaign's team."""
    if not (user.is_active and user.is_staff):
        return False
    return is_operator(user) or Membership.objects.filter(user_id=user.pk).exists()
