"""Django admin: the staff interface until the dashboard exists.

Personal data is shown only where staff need it to answer a request; ledgers are
read-only because they are evidence.
"""

from functools import partial
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from subscriptions import admin_requests
from subscriptions.models import (
    AuditEvent,
    Campaign,
    ConsentEvent,
    DailyStat,
    Delivery,
    Mailing,
    PrivacyNotice,
    SignupForm,
    Subscriber,
    Subscription,
    Suppression,
    Topic,
)
from subscriptions.services import lifecycle, privacy
from subscriptions.services import mailings as mailing_services


def may_draft_mailing(model_admin: admin.ModelAdmin, request: Any) -> bool:
    """Drafting a mailing from a campaign or topic changes both: Django shows actions to mere viewers."""
    return model_admin.has_change_permission(request) and request.user.has_perm("subscriptions.add_mailing")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class TopicInline(admin.TabularInline):
    model = Topic
    extra = 0
    fields = ["position", "slug", "name", "kind", "public_status", "archived"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = admin_requests.CampaignForm
    list_display = ["name", "slug", "status", "starts_on", "ends_on", "erasure", "tracking_mode"]
    list_filter = ["status", "tracking_mode"]
    prepopulated_fields = {"slug": ["name"]}
    # The status follows the end date (services.lifecycle): staff end a campaign by dating it.
    readonly_fields = ["status", "erasure", "api_key_hash", "created_at"]
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

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        confirmed = form.cleaned_data.get("erase_now") and "ends_on" in form.changed_data
        if confirmed and lifecycle.campaign_end_due(campaign=obj):
            lifecycle.campaign_end_confirmed(campaign=obj, actor=request.user)
            messages.warning(request, f"“{obj.name}” has ended: its subscribers are being erased now.")

    def has_draft_mailing_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return may_draft_mailing(self, request)

    @admin.action(
        description="Draft a notice telling every active subscriber when the campaign ends",
        permissions=["draft_mailing"],
    )
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
class PrivacyNoticeAdmin(admin.ModelAdmin):
    form = admin_requests.PrivacyNoticeForm
    list_display = ["campaign", "version", "published_on", "url"]
    list_filter = ["campaign"]

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return [*admin_requests.PrivacyNoticeForm.Meta.fields, "notify_subscribers"]
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
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "kind", "public_status", "archived"]
    list_filter = ["campaign", "kind", "archived"]
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

    def has_draft_mailing_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return may_draft_mailing(self, request)

    @admin.action(description="Draft an entity alert for the current public status", permissions=["draft_mailing"])
    def draft_alert(self, request, queryset):  # type: ignore[no-untyped-def]
        for topic in queryset:
            try:
                mailing = mailing_services.alert_draft_create(topic=topic, actor=request.user)
            except ValidationError as error:
                messages.error(request, f"{topic.name}: {' '.join(error.messages)}")
            else:
                messages.success(request, f"Drafted “{mailing.subject}”: review it, then send it from Mailings.")


@admin.register(SignupForm)
class SignupFormAdmin(admin.ModelAdmin):
    list_display = ["title", "campaign", "slug", "version", "is_current"]
    list_filter = ["campaign", "is_current"]
    filter_horizontal = ["topics"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "status", "restricted", "legal_hold", "created_at"]
    list_filter = ["campaign", "status", "restricted", "legal_hold"]
    # Exact match only, within one campaign: staff find a person by their full address.
    search_fields = ["=email"]
    search_help_text = "Choose a campaign in the filter, then enter the person's full email address."
    exclude = ["link_key", "email_hmac"]
    change_form_template = "admin/subscriptions/subscriber/change_form.html"

    # Every change is a data request page (admin_requests), which checks it and audits it.
    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def get_search_results(self, request, queryset, search_term):  # type: ignore[no-untyped-def]
        if not search_term:
            return queryset, False
        return admin_requests.exact_search(request, queryset, search_term), False

    def get_urls(self):  # type: ignore[no-untyped-def]
        view = self.admin_site.admin_view(partial(admin_requests.data_request, self))
        request_path = path("<int:subscriber_id>/request/<slug:action>/", view, name="subscriptions_subscriber_request")
        return [request_path, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        subscriber = Subscriber.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        requests = [("export", "Export data"), ("rectify", "Correct details")]
        if subscriber is not None:
            requests.append(("unrestrict", "Lift restriction") if subscriber.restricted else ("restrict", "Restrict"))
            requests.append(("lift-hold", "Lift legal hold") if subscriber.legal_hold else ("hold", "Legal hold"))
        requests.append(("erase", "Erase"))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "data_requests": requests})


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "subscriber_id", "topic", "created_at", "ended_at", "source", "ended_reason"]
    list_filter = ["topic__campaign"]


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "subscriber_id", "kind", "source", "created_at"]
    list_filter = ["kind", "source"]


class MailingForm(forms.ModelForm):
    class Meta:
        model = Mailing
        fields = ["campaign", "kind", "topics", "subject", "body", "scheduled_at"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        mailing = Mailing(**{name: cleaned.get(name) for name in ("campaign", "kind", "subject", "body")})
        problems = mailing_services.mailing_problems(mailing=mailing, topics=cleaned.get("topics") or [])
        if problems:
            raise ValidationError(problems)
        return cleaned


@admin.register(Mailing)
class MailingAdmin(admin.ModelAdmin):
    form = MailingForm
    list_display = [
        "subject", "campaign", "kind", "status", "scheduled_at",
        "recipients_count", "sent_count", "failed_count", "remaining_count",
    ]  # fmt: skip
    list_filter = ["campaign", "kind", "status"]
    filter_horizontal = ["topics"]
    actions = ["send_now", "schedule", "cancel", "send_test_to_me"]
    readonly_fields = [
        "preview_link",
        "status",
        "created_by",
        "started_at",
        "finished_at",
        "recipients_count",
        "sent_count",
        "failed_count",
        "skipped_count",
        "unknown_count",
        "bounced_count",
        "complained_count",
        "opens_count",
        "clicks_count",
    ]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Only a draft has no deliveries and no counts worth keeping. Deleting one that
        # went out would cascade through every delivery (by an unindexed column) and
        # list them all on the confirmation page; cancel it instead.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Mailing.Status.DRAFT)

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):  # type: ignore[no-untyped-def]
        # The bulk delete would gather every delivery of whatever is ticked to list them.
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)
        return actions

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Once it has left the drafts, a mailing is a record of what was sent.
        if obj is not None and obj.status != Mailing.Status.DRAFT:
            return [*MailingForm.Meta.fields, *self.readonly_fields]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Preview")
    def preview_link(self, obj: Mailing) -> str:
        if obj.pk is None:
            return "Save the draft to preview it."
        url = reverse("admin:subscriptions_mailing_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview as a subscriber would see it</a>', url)

    def get_urls(self):  # type: ignore[no-untyped-def]
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("<int:mailing_id>/preview/", preview, name="subscriptions_mailing_preview"), *super().get_urls()]

    def preview_view(self, request, mailing_id: int):  # type: ignore[no-untyped-def]
        mailing = get_object_or_404(Mailing.objects.select_related("campaign"), pk=mailing_id)
        if not self.has_view_permission(request, mailing):
            raise PermissionDenied
        subscriber_id = request.GET.get("subscriber", "")
        subscriber = None
        if subscriber_id.isdigit():
            subscriber = Subscriber.objects.filter(pk=subscriber_id, campaign_id=mailing.campaign_id).first()
        preview = mailing_services.mailing_preview(mailing=mailing, subscriber=subscriber)
        if request.GET.get("part") == "html":
            return HttpResponse(preview.html)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {preview.subject}",
            "opts": self.model._meta,
            **{"mailing": mailing, "preview": preview, "subscriber": subscriber},
        }
        return TemplateResponse(request, "admin/subscriptions/mailing/preview.html", context)

    def _each(self, request, queryset, act, done: str) -> None:  # type: ignore[no-untyped-def]
        for mailing in queryset:
            try:
                act(mailing)
            except ValidationError as error:
                messages.error(request, f"“{mailing.subject}”: {' '.join(error.messages)}")
            else:
                messages.success(request, f"“{mailing.subject}”: {done}")

    @admin.action(description="Send now", permissions=["change"])
    def send_now(self, request, queryset):  # type: ignore[no-untyped-def]
        send = partial_call(mailing_services.mailing_send_now, actor=request.user)
        self._each(request, queryset, send, "sending has started.")

    @admin.action(description="Schedule for the time set on the mailing", permissions=["change"])
    def schedule(self, request, queryset):  # type: ignore[no-untyped-def]
        def act(mailing: Mailing) -> None:
            if mailing.scheduled_at is None:
                raise ValidationError("Set the scheduled time on the mailing first.")
            mailing_services.mailing_schedule(mailing_id=mailing.pk, send_at=mailing.scheduled_at, actor=request.user)

        self._each(request, queryset, act, "scheduled.")

    @admin.action(description="Cancel", permissions=["change"])
    def cancel(self, request, queryset):  # type: ignore[no-untyped-def]
        cancel = partial_call(mailing_services.mailing_cancel, actor=request.user)
        self._each(request, queryset, cancel, "cancelled; nothing more will be sent.")

    @admin.action(description="Send a test to my own address", permissions=["change"])
    def send_test_to_me(self, request, queryset):  # type: ignore[no-untyped-def]
        def act(mailing: Mailing) -> None:
            mailing_services.mailing_send_test(
                mailing=mailing, to=request.user.email, first_name=request.user.first_name, actor=request.user
            )

        self._each(request, queryset, act, f"test sent to {request.user.email}.")


def partial_call(service, **fixed):  # type: ignore[no-untyped-def]
    """An admin action's per-mailing call of a service taking mailing_id."""
    return lambda mailing: service(mailing_id=mailing.pk, **fixed)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "mailing", "subscriber_id", "status", "sent_at"]
    list_filter = ["status"]


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "reason", "created_at"]
    list_filter = ["campaign", "reason"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id"]
    list_filter = ["action"]


@admin.register(DailyStat)
class DailyStatAdmin(ReadOnlyAdmin):
    list_display = ["day", "campaign", "topic", "metric", "reason", "count"]
    list_filter = ["campaign", "metric"]
