"""Django admin: the staff interface until the staff workspace exists, scoped to campaign teams.

A member sees and acts only in the campaigns they belong to, with the permissions their
membership grants (`permissions.ADMIN_RULES`, applied by `admin_scope.ScopedAdmin`);
platform operators (superusers) see everything. Personal data is shown only to members
who answer data requests, and looking at it is audited; ledgers are read-only because
they are evidence, for everyone.
"""

from functools import partial
from typing import Any
from urllib.parse import urlencode

from allauth.mfa.admin import AuthenticatorAdmin
from allauth.mfa.models import Authenticator
from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from subscriptions import permissions, staff_auth
from subscriptions.admin import data_requests, mailings, signup_forms
from subscriptions.admin.scope import CampaignListFilter, ReadOnlyAdmin, ScopedAdmin
from subscriptions.audit import audit_record
from subscriptions.models import (
    ApiKey,
    AuditEvent,
    Campaign,
    ConsentEvent,
    DailyStat,
    Delivery,
    Invitation,
    Membership,
    PrivacyNotice,
    Subscriber,
    Subscription,
    Suppression,
    Topic,
)
from subscriptions.services import lifecycle, privacy
from subscriptions.services import mailings as mailing_services


def _may_use_admin(request: Any) -> bool:
    return permissions.may_use_admin(request.user)


# Staff status alone opens nothing: an operator, or a member of at least one campaign's team.
admin.site.has_permission = _may_use_admin  # type: ignore[method-assign]
# Bulk deletion would reach past the per-object checks; nothing here is deleted in bulk.
admin.site.disable_action("delete_selected")
# The Mailing and Signup form admins live in their own modules; importing them registers them.
__all__ = ["mailings", "signup_forms"]


class TopicInline(admin.TabularInline):
    """The campaign's topics on its page: the campaign is the object the membership is checked in."""

    model = Topic
    extra = 0
    fields = ["position", "slug", "name", "kind", "public_status", "archived"]

    def _may(self, request: Any, action: str, obj: Campaign | None) -> bool:
        return permissions.admin_allows(request.user, "topic", action, obj.pk if obj is not None else None)

    def has_view_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self._may(request, "view", obj)

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self._may(request, "add", obj)

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self._may(request, "change", obj)

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Deleting a topic would take its subscriptions with it: archive it instead.
        return False


@admin.register(Campaign)
class CampaignAdmin(ScopedAdmin):
    campaign_via = "pk"
    form = data_requests.CampaignForm
    list_display = ["name", "slug", "status", "starts_on", "ends_on", "erasure", "tracking_mode"]
    list_filter = ["status", "tracking_mode"]
    prepopulated_fields = {"slug": ["name"]}
    # The status follows the end date (services.lifecycle): staff end a campaign by dating it.
    readonly_fields = ["status", "erasure", "created_at"]
    inlines = [TopicInline]
    actions = ["draft_end_notice"]

    @admin.display(description="Erasure at the end")
    def erasure(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "-"
        preview = lifecycle.campaign_end_preview(campaign=obj)
        held = f"; {preview.held} on legal hold kept until the hold lifts" if preview.held else ""
        people = f"{preview.to_erase} {'person' if preview.to_erase == 1 else 'people'}"
        if preview.erased:
            return f"Erased{held}"
        if preview.erase_on is None:
            return f"No end date: {people} kept until they leave{held}"
        return f"{people} to be erased on {preview.erase_on:%d %b %Y}{held}"

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # A campaign ends (and its people are erased) by its end date; deleting it would
        # take its suppressions and consent evidence with it.
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        # A campaign's settings decide when everyone in it is erased (its end date, "erase
        # now"), who must approve big sends, what is tracked and who the mail is from:
        # every change needs a recent sign-in. The POST is replayed once it is given.
        if request.method == "POST" and object_id is not None:
            campaign = self.get_object(request, object_id)
            allowed = campaign is not None and self.has_change_permission(request, campaign)
            if allowed and staff_auth.reauthentication_needed(request):
                return staff_auth.reauthenticate_redirect(request, request.get_full_path())
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            before = {name: form.initial.get(name) for name in form.changed_data if name != "erase_now"}
            lifecycle.campaign_settings_changed(campaign=obj, actor=request.user, before=before)
        confirmed = form.cleaned_data.get("erase_now") and "ends_on" in form.changed_data
        if confirmed and lifecycle.campaign_end_due(campaign=obj):
            lifecycle.campaign_end_confirmed(campaign=obj, actor=request.user)
            messages.warning(request, f"“{obj.name}” has ended: its subscribers are being erased now.")

    @admin.action(description="Draft a notice telling every active subscriber when the campaign ends")
    def draft_end_notice(self, request, queryset):  # type: ignore[no-untyped-def]
        for campaign in queryset:
            try:
                mailing = lifecycle.campaign_end_notice_draft(campaign=campaign, actor=request.user)
            except ValidationError as error:
                messages.error(request, f"{campaign.name}: {' '.join(error.messages)}")
                continue
            url = reverse("admin:subscriptions_mailing_change", args=[mailing.pk])
            messages.success(
                request, format_html('Drafted <a href="{}">“{}”</a>: review it, then send it.', url, mailing)
            )


@admin.register(PrivacyNotice)
class PrivacyNoticeAdmin(ScopedAdmin):
    form = data_requests.PrivacyNoticeForm
    list_display = ["campaign", "version", "published_on", "url"]
    list_filter = [("campaign", CampaignListFilter)]

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return [*data_requests.PrivacyNoticeForm.Meta.fields, "notify_subscribers"]
        return ["campaign", "version", "url", "summary", "retention_summary", "published_on", "published_at"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # A published notice is evidence of what people were shown: never edited.
        if obj is not None:
            return ["campaign", "version", "url", "summary", "retention_summary", "published_on", "published_at"]
        return ["published_at"]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if change:
            return
        notify = form.cleaned_data["notify_subscribers"]
        notice = privacy.privacy_notice_publish(
            campaign=obj.campaign, url=obj.url, summary=obj.summary, retention_summary=obj.retention_summary,
            published_on=obj.published_on, actor=request.user, notify_subscribers=notify,
        )  # fmt: skip
        obj.pk, obj.version, obj.published_at = notice.pk, notice.version, notice.published_at
        if notify:
            messages.info(request, "Every active subscriber is being sent a notice of the change.")


@admin.register(Topic)
class TopicAdmin(ScopedAdmin):
    list_display = ["name", "campaign", "kind", "public_status", "archived"]
    list_filter = [("campaign", CampaignListFilter), "kind", "archived"]
    search_fields = ["name", "slug"]
    actions = ["draft_alert"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        previous = form.initial.get("public_status", "") if change else ""
        super().save_model(request, obj, form, change)
        if mailing_services.topic_status_changed(topic=obj, previous_status=previous):
            prefill = mailing_services.alert_prefill(topic=obj)
            url = f"{reverse('admin:subscriptions_mailing_add')}?{urlencode(prefill, doseq=True)}"
            offer = '“{}” is now “{}”. <a href="{}">Write an alert to its subscribers</a>.'
            messages.info(request, format_html(offer, obj.name, obj.public_status, url))

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Deleting a topic would take its subscriptions with it: archive it instead.
        return False

    @admin.action(description="Draft an entity alert for the current public status")
    def draft_alert(self, request, queryset):  # type: ignore[no-untyped-def]
        for topic in queryset:
            try:
                mailing = mailing_services.alert_draft_create(topic=topic, actor=request.user)
            except ValidationError as error:
                messages.error(request, f"{topic.name}: {' '.join(error.messages)}")
            else:
                messages.success(request, f"Drafted “{mailing.subject}”: review it, then send it from Mailings.")


@admin.register(Subscriber)
class SubscriberAdmin(ReadOnlyAdmin):
    # Every change is a data request page (admin/data_requests.py), which checks it and audits it.
    personal_data = True
    list_display = ["id", "campaign", "status", "restricted", "legal_hold", "created_at"]
    list_filter = [("campaign", CampaignListFilter), "status", "restricted", "legal_hold"]
    # No search box: an address in a query string lands in access logs. Staff find a
    # person with the "Find a person" page, a POST (data_requests.find_person).
    exclude = ["link_key", "email_hmac"]
    change_form_template = "admin/subscriptions/subscriber/change_form.html"
    change_list_template = "admin/subscriptions/subscriber/change_list.html"

    def get_urls(self):  # type: ignore[no-untyped-def]
        view = self.admin_site.admin_view(partial(data_requests.data_request, self))
        request_path = path("<int:subscriber_id>/request/<slug:action>/", view, name="subscriptions_subscriber_request")
        find = self.admin_site.admin_view(partial(data_requests.find_person, self))
        return [path("find/", find, name="subscriptions_subscriber_find"), request_path, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):  # type: ignore[no-untyped-def]
        # An old bookmark or a typed `?q=`: the address is in this URL already; search nothing.
        if SEARCH_VAR in request.GET:
            messages.error(request, "Find a person with this page: an address is never searched from a web address.")
            return redirect(reverse("admin:subscriptions_subscriber_find"))
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        subscriber = self.get_object(request, object_id)
        if subscriber is not None and self.has_view_permission(request, subscriber):
            # Opening a person's record is looking at their personal data.
            audit_record(
                actor=request.user, action="subscriber_viewed", campaign_id=subscriber.campaign_id,
                target_type="subscriber", target_id=subscriber.pk,
            )  # fmt: skip
        requests = [("export", "Export data"), ("rectify", "Correct details")]
        if subscriber is not None:
            requests.append(("unrestrict", "Lift restriction") if subscriber.restricted else ("restrict", "Restrict"))
            requests.append(("lift-hold", "Lift legal hold") if subscriber.legal_hold else ("hold", "Legal hold"))
        requests.append(("erase", "Erase"))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "data_requests": requests})


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    campaign_via = "topic__campaign"
    personal_data = True
    record_views = True
    list_display = ["id", "subscriber_id", "topic", "created_at", "ended_at", "source", "ended_reason"]
    list_filter = [("topic__campaign", CampaignListFilter)]


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    campaign_via = "subscriber__campaign"
    personal_data = True
    record_views = True
    list_display = ["id", "subscriber_id", "kind", "source", "created_at"]
    list_filter = [("subscriber__campaign", CampaignListFilter), "kind", "source"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    campaign_via = "mailing__campaign"
    list_display = ["id", "mailing", "subscriber_id", "status", "sent_at"]
    list_filter = [("mailing__campaign", CampaignListFilter), "status"]


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    personal_data = True
    record_views = True
    list_display = ["id", "campaign", "reason", "created_at"]
    list_filter = [("campaign", CampaignListFilter), "reason"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    personal_data = True
    list_display = ["created_at", "actor_name", "actor_is_operator", "campaign", "action", "target_type", "target_id"]
    list_filter = [("campaign", CampaignListFilter), "action"]
    exclude = ["actor"]


@admin.register(DailyStat)
class DailyStatAdmin(ReadOnlyAdmin):
    list_display = ["day", "campaign", "topic", "metric", "reason", "count"]
    list_filter = [("campaign", CampaignListFilter), "metric"]


# The team and its keys: members manage them on the staff pages; operators may look here.
@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "campaign", "permissions", "created_at"]
    list_filter = [("campaign", CampaignListFilter)]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "invited_by_name", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = [("campaign", CampaignListFilter)]
    exclude = ["token_hash"]


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "campaign", "prefix", "created_by_name", "created_at", "last_used_at", "expires_at"]
    list_filter = [("campaign", CampaignListFilter)]
    exclude = ["key_hash"]


# An operator deleting a member's lost authenticator is how a member who lost both the
# app and the recovery codes gets back in: it belongs in the trail, not only in
# Django's admin log. (A member removing their own goes through allauth's pages, which
# auth_audit records.)
admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuditedAuthenticatorAdmin(AuthenticatorAdmin):
    def delete_model(self, request, obj):  # type: ignore[no-untyped-def]
        _authenticator_deleted(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        for obj in queryset:
            _authenticator_deleted(request, obj)
        super().delete_queryset(request, queryset)


def _authenticator_deleted(request: Any, obj: Authenticator) -> None:
    audit_record(
        actor=request.user, action="staff_authenticator_deleted_by_operator", target_type="user",
        target_id=obj.user_id, kind=obj.type,
    )  # fmt: skip


def _for_operators_only(model_admin: admin.ModelAdmin) -> None:
    """Other apps' admins (users, groups, sign-in records) answer Django's global model
    permissions, which grant a team member nothing here: only operators reach them."""
    for name in ("has_module_permission", "has_view_permission", "has_add_permission", "has_change_permission",
                 "has_delete_permission"):  # fmt: skip
        allowed = getattr(model_admin, name)

        def operators_only(request: Any, *args: Any, _allowed: Any = allowed, **kwargs: Any) -> bool:
            return permissions.is_operator(request.user) and bool(_allowed(request, *args, **kwargs))

        setattr(model_admin, name, operators_only)


# The app comes last in INSTALLED_APPS, so every other app's admin is registered by now.
for _model, _model_admin in list(admin.site._registry.items()):
    if _model._meta.app_label != "subscriptions":
        _for_operators_only(_model_admin)
