"""Every admin route and every admin action, asked by a member of campaign A holding exactly
one permission (for each permission) and by a platform operator, against A's rows and
against campaign B's: each answer is what the table below says, and nothing of B changes.

The routes come from `admin.site._registry` and each ModelAdmin's `get_urls()`, the actions
from each ModelAdmin: a route or action added without a line in this table fails here.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission as DjangoPermission
from django.core import mail
from django.urls import URLPattern, reverse

from subscriptions.admin import data_requests
from subscriptions.audit import audit_record
from subscriptions.models import (
    ApiKey,
    AuditEvent,
    Campaign,
    ConsentEvent,
    DailyStat,
    Delivery,
    Invitation,
    Mailing,
    Membership,
    Permission,
    PrivacyNotice,
    SignupForm,
    Subscriber,
    Subscription,
    Suppression,
    Topic,
)
from tests.support.admin_staff import member, reauthenticated, signed_in
from tests.support.factories import (
    CampaignFactory,
    PrivacyNoticeFactory,
    SignupFormFactory,
    StaffUserFactory,
    TopicFactory,
)
from tests.support.lifecycle import person_with_history
from tests.support.mailing_fixtures import BODY

pytestmark = pytest.mark.django_db

P = Permission
EVERY = frozenset(Permission.values)  # any membership at all
OPERATORS: frozenset[str] = frozenset()  # no member; operators only
NOBODY = None  # operators neither

# model: (may list / open, may add, may delete). Changing is asked with the open page.
MODELS: dict[str, tuple[frozenset[str], frozenset[str] | None, frozenset[str] | None]] = {
    "campaign": (EVERY, OPERATORS, NOBODY),
    "topic": (EVERY, frozenset({P.MANAGE}), NOBODY),
    "signupform": (EVERY, frozenset({P.MANAGE}), NOBODY),  # published versions are evidence
    "privacynotice": (EVERY, frozenset({P.MANAGE}), NOBODY),
    "mailing": (frozenset({P.DASHBOARD, P.DRAFT, P.SEND}), frozenset({P.DRAFT}), frozenset({P.DRAFT})),
    "subscriber": (frozenset({P.DATA_REQUESTS}), NOBODY, NOBODY),
    "subscription": (frozenset({P.DATA_REQUESTS}), NOBODY, NOBODY),
    "consentevent": (frozenset({P.DATA_REQUESTS}), NOBODY, NOBODY),
    "suppression": (frozenset({P.DATA_REQUESTS}), NOBODY, NOBODY),
    "auditevent": (frozenset({P.DATA_REQUESTS}), NOBODY, NOBODY),
    "dailystat": (frozenset({P.DASHBOARD}), NOBODY, NOBODY),
    "delivery": (frozenset({P.DASHBOARD, P.SEND}), NOBODY, NOBODY),
    "membership": (OPERATORS, NOBODY, NOBODY),
    "invitation": (OPERATORS, NOBODY, NOBODY),
    "apikey": (OPERATORS, NOBODY, NOBODY),
}
# Routes beyond changelist, add, change, history and delete.
CUSTOM_ROUTES = {("mailing", "preview"), ("subscriber", "request"), ("subscriber", "find")}
DATA_REQUESTS = ["export", "rectify", "restrict", "unrestrict", "hold", "lift-hold", "erase"]
ACTIONS: dict[tuple[str, str], frozenset[str]] = {
    ("campaign", "draft_end_notice"): frozenset({P.DRAFT}),
    ("topic", "draft_alert"): frozenset({P.DRAFT}),
    ("mailing", "send_now"): frozenset({P.SEND}),
    ("mailing", "schedule"): frozenset({P.SEND}),
    ("mailing", "cancel"): frozenset({P.SEND}),
    ("mailing", "approve"): frozenset({P.SEND}),
    ("mailing", "send_test_to_me"): frozenset({P.DRAFT, P.SEND}),
}
# The models whose add form names a campaign: a member posts B's id there.
ADDED_WITH_A_CAMPAIGN = ["topic", "signupform", "privacynotice", "mailing"]
REFUSED = {403, 404}
OPERATOR = "operator"


def campaign_world(campaign, creator):
    """One row of every kind the admin shows, all in `campaign`."""
    topic = TopicFactory(campaign=campaign, kind=Topic.Kind.ENTITY, public_status="Recruiting now")
    mailing = Mailing.objects.create(
        campaign=campaign, subject=f"News of {campaign.name}", body=BODY, created_by=creator
    )
    mailing.topics.set([topic])
    person = person_with_history(
        campaign=campaign, email=f"person@{campaign.slug}.example.com", first_name="Imogen", topics=[topic],
        mailing=mailing,
    )  # fmt: skip
    form = SignupFormFactory(campaign=campaign)
    form.topics.set([topic])
    staff = StaffUserFactory(is_superuser=False)
    return {
        "campaign": campaign, "topic": topic, "signupform": form, "mailing": mailing, "subscriber": person,
        "privacynotice": PrivacyNoticeFactory(campaign=campaign),
        "subscription": Subscription.objects.get(subscriber=person),
        "consentevent": ConsentEvent.objects.filter(subscriber=person).first(),
        "delivery": Delivery.objects.get(subscriber=person),
        "suppression": Suppression.objects.create(campaign=campaign, email_hmac="0" * 64, reason="withdrawn"),
        "auditevent": audit_record(actor=creator, action="seeded", campaign_id=campaign.pk),
        "dailystat": DailyStat.objects.create(campaign=campaign, day="2026-01-01", metric="signups", count=3),
        "membership": Membership.objects.create(user=staff, campaign=campaign, permissions=[P.DASHBOARD]),
        "invitation": Invitation.objects.create(
            campaign=campaign, email="new@example.org", token_hash=f"{campaign.pk:064d}", expires_at="2099-01-01T00:00Z"
        ),
        "apikey": ApiKey.objects.create(campaign=campaign, name="site", prefix="tk_", key_hash=f"{campaign.pk:064x}"),
    }  # fmt: skip


# What of campaign B a request could change, and the lookup from each to the campaign.
OF_CAMPAIGN = [
    (Campaign, "pk"), (Topic, "campaign"), (SignupForm, "campaign"),
    (SignupForm.topics.through, "signupform__campaign"), (PrivacyNotice, "campaign"), (Mailing, "campaign"),
    (Mailing.topics.through, "mailing__campaign"),
    (Subscriber, "campaign"), (Subscription, "topic__campaign"), (ConsentEvent, "subscriber__campaign"),
    (Delivery, "mailing__campaign"), (Suppression, "campaign"), (DailyStat, "campaign"), (Membership, "campaign"),
    (Invitation, "campaign"), (ApiKey, "campaign"), (AuditEvent, "campaign"),
]  # fmt: skip


def everything_of(campaign):
    return {
        model.__name__: sorted(repr(row) for row in model.objects.filter(**{via: campaign.pk}).values())
        for model, via in OF_CAMPAIGN
    }


@pytest.fixture
def world():
    creator = StaffUserFactory(is_superuser=False)
    a, b = CampaignFactory(name="Campaign A"), CampaignFactory(name="Campaign B")
    return {"A": campaign_world(a, creator), "B": campaign_world(b, creator)}


def routes():
    """(model, kind) of every named admin route of the app, from the admin itself."""
    found = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "subscriptions":
            continue
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            assert isinstance(pattern, URLPattern)
            if pattern.name:
                found.append((model._meta.model_name, pattern.name.removeprefix(prefix)))
    return found


def admin_actions():
    site_actions = {name for name, _ in admin.site.actions}
    return {
        (model._meta.model_name, action if isinstance(action, str) else action.__name__)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "subscriptions"
        for action in [*(model_admin.actions or []), *site_actions]
    }


def test_every_route_and_action_has_a_line_in_the_table():
    standard = {"changelist", "add", "change", "history", "delete"}
    expected = {(model, kind) for model in MODELS for kind in standard} | CUSTOM_ROUTES

    assert set(routes()) == expected
    # The site's own pages: the index and app lists show only what the member may open
    # (test_scoping), and the autocomplete answers through the ModelAdmins' querysets.
    site_pages = {pattern.name for pattern in admin.site.get_urls() if isinstance(pattern, URLPattern)}
    assert site_pages == {
        "index", "login", "logout", "password_change", "password_change_done", "autocomplete", "jsi18n",
        "view_on_site", "app_list", None,
    }  # fmt: skip
    assert list(data_requests.PAGES) == DATA_REQUESTS
    assert admin_actions() == set(ACTIONS)


def grants(rule, who):
    if rule is None:
        return False
    return who == OPERATOR or who in rule


def page_expectations(world, who):
    """(label, side, url, statuses) of every GET, against A's rows and B's."""
    asked = []
    for side in ("A", "B"):
        theirs = side == "A" or who == OPERATOR
        for model, (view, _add, delete) in MODELS.items():
            obj = world[side][model]
            ok = {200} if grants(view, who) and theirs else REFUSED
            # An object page of a model the member cannot see, or of another campaign, is a 404.
            hidden = {404} if not theirs or not grants(view, who) else REFUSED
            change = f"admin:subscriptions_{model}_change"
            asked += [
                (f"{model} change", side, reverse(change, args=[obj.pk]), ok if ok == {200} else hidden),
                (f"{model} history", side, reverse(f"admin:subscriptions_{model}_history", args=[obj.pk]),
                 ok if ok == {200} else hidden),
                (f"{model} delete", side, reverse(f"admin:subscriptions_{model}_delete", args=[obj.pk]),
                 {200} if ok == {200} and grants(delete, who) else (hidden if ok != {200} else {403})),
            ]  # fmt: skip
        mailing, person = world[side]["mailing"], world[side]["subscriber"]
        may_request = grants(frozenset({P.DATA_REQUESTS}), who)
        for action in DATA_REQUESTS:
            url = reverse("admin:subscriptions_subscriber_request", args=[person.pk, action])
            asked.append((f"request {action}", side, url, {200} if may_request and theirs else {404}))
        sees_mailings = grants(MODELS["mailing"][0], who)
        preview = reverse("admin:subscriptions_mailing_preview", args=[mailing.pk])
        asked.append(("preview", side, preview, {200} if sees_mailings and theirs else {404}))
        asked.append(("preview as person", side, f"{preview}?subscriber={person.pk}",
                      {200} if who == OPERATOR else {404}))  # fmt: skip
    find = reverse("admin:subscriptions_subscriber_find")
    asked.append(("find a person", "", find, {200} if grants(frozenset({P.DATA_REQUESTS}), who) else {404}))
    for model, (view, add, _delete) in MODELS.items():
        asked.append((f"{model} list", "", reverse(f"admin:subscriptions_{model}_changelist"),
                      {200} if grants(view, who) else {403}))  # fmt: skip
        asked.append((f"{model} add", "", reverse(f"admin:subscriptions_{model}_add"),
                      {200} if grants(add, who) else {403}))  # fmt: skip
    return asked


def post_everything_at_b(client, world, who):
    """Every change, deletion, action, data request and add a member can aim at B: each refused."""
    wrong = []
    b = world["B"]

    def expect(label, url, data, statuses):
        refusals = AuditEvent.objects.filter(action="access_refused").count()
        response = client.post(url, data)
        if response.status_code not in statuses:
            wrong.append(f"{who} POST {label} at B: {response.status_code}, expected {sorted(statuses)}")
        # A 404 (or a form refusing B's campaign) is a refusal the trail records.
        recorded = AuditEvent.objects.filter(action="access_refused").count() > refusals
        if response.status_code in (200, 404) and not recorded:
            wrong.append(f"{who} POST {label} at B: refused without an audit event")

    for model in MODELS:
        obj = b[model]
        expect(f"{model} change", reverse(f"admin:subscriptions_{model}_change", args=[obj.pk]), {}, {404})
        expect(f"{model} delete", reverse(f"admin:subscriptions_{model}_delete", args=[obj.pk]), {"post": "yes"}, {404})
    for model, action in ACTIONS:
        changelist = reverse(f"admin:subscriptions_{model}_changelist")
        expect(action, changelist, {"action": action, "_selected_action": [b[model].pk]}, {404})
    for action in DATA_REQUESTS:
        url = reverse("admin:subscriptions_subscriber_request", args=[b["subscriber"].pk, action])
        data = {"confirm": "on", "reason": "x", "email": "x@example.org", "first_name": "X", "attributes": "{}"}
        expect(f"request {action}", url, data, {404})
    find = {"campaign": b["campaign"].pk, "email": b["subscriber"].email}
    expect("find a person", reverse("admin:subscriptions_subscriber_find"), find, {404})
    for model in ADDED_WITH_A_CAMPAIGN:
        data = {
            "campaign": b["campaign"].pk, "topics": [b["topic"].pk], "slug": "b-slug", "name": "B", "title": "B",
            "subject": "B", "body": BODY, "kind": "newsletter", "url": "https://b.example.org", "summary": "B",
        }  # fmt: skip
        may_add = grants(MODELS[model][1], who)
        expect(f"{model} add", reverse(f"admin:subscriptions_{model}_add"), data, {200} if may_add else {404})
    return wrong


def act_on_a(client, world, who):
    wrong = []
    for (model, action), rule in ACTIONS.items():
        changelist = reverse(f"admin:subscriptions_{model}_changelist")
        response = client.post(changelist, {"action": action, "_selected_action": [world["A"][model].pk]})
        expected = 302 if grants(rule, who) else 404
        if response.status_code != expected:
            wrong.append(f"{who} action {action} on A: {response.status_code}, expected {expected}")
    return wrong


def other_apps_models() -> list[str]:
    return sorted(
        f"{model._meta.app_label}_{model._meta.model_name}"
        for model in admin.site._registry
        if model._meta.app_label != "subscriptions"
    )


@pytest.mark.parametrize("model", other_apps_models())
def test_other_apps_admins_are_for_operators_even_given_djangos_permissions(client, model):
    app_label = model.split("_", 1)[0]
    everyone = member(CampaignFactory(), *Permission.values)
    everyone.user_permissions.set(DjangoPermission.objects.filter(content_type__app_label=app_label))
    signed_in(client, everyone)

    assert client.get(reverse(f"admin:{model}_changelist")).status_code == 403
    assert client.get(reverse(f"admin:{model}_add")).status_code == 403
    assert client.get(reverse("admin:app_list", args=[app_label])).status_code == 404

    signed_in(client, StaffUserFactory())
    assert client.get(reverse(f"admin:{model}_changelist")).status_code == 200


@pytest.mark.parametrize("who", [*Permission.values, OPERATOR])
def test_each_route_and_action_answers_as_the_table_says(client, world, who):
    user = StaffUserFactory() if who == OPERATOR else member(world["A"]["campaign"], who)
    # Django's own model permissions, all of them, grant a member nothing more.
    if who != OPERATOR:
        user.user_permissions.set(DjangoPermission.objects.filter(content_type__app_label="subscriptions"))
    signed_in(client, user)
    reauthenticated(client, user)
    b_before = everything_of(world["B"]["campaign"])
    wrong = []

    for label, side, url, statuses in page_expectations(world, who):
        response = client.get(url)
        if response.status_code not in statuses:
            wrong.append(f"{who} GET {label} {side} {url}: {response.status_code}, expected {sorted(statuses)}")
        elif response.status_code == 200 and label.endswith(" list"):
            wrong += listed_wrongly(response, world, label.removesuffix(" list"), who)
    if who != OPERATOR:
        wrong += post_everything_at_b(client, world, who)
    wrong += act_on_a(client, world, who)

    assert wrong == []
    if who != OPERATOR:
        assert_b_unchanged(b_before, everything_of(world["B"]["campaign"]))
        assert not [message for message in mail.outbox if world["B"]["subscriber"].email in message.to]


def listed_wrongly(response, world, model, who):
    listed = set(response.context["cl"].result_list)
    wanted = {world["A"][model]} | ({world["B"][model]} if who == OPERATOR else set())
    unwanted = set() if who == OPERATOR else {world["B"][model]}
    if wanted <= listed and not (unwanted & listed):
        return []
    return [f"{who} list of {model}: shows {sorted(map(str, listed))}"]


def assert_b_unchanged(before, after):
    audit_before, audit_after = before.pop("AuditEvent"), after.pop("AuditEvent")
    assert after == before
    # The trail of B gains only the refusals of what was tried.
    assert set(audit_before) <= set(audit_after)
    assert all("'action': 'access_refused'" in row for row in set(audit_after) - set(audit_before))
