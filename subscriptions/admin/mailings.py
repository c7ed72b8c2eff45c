"""The Mailing admin: drafting, previewing, approving and sending, scoped to campaign teams.

Drafts need the draft permission in the mailing's campaign; send now, schedule, cancel
and approve need the send permission; a preview as a named person needs the data
requests permission and is audited. "Send now" asks for a recent sign-in first.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from subscriptions import permissions, staff_auth
from subscriptions.admin.scope import CampaignListFilter, ScopedAdmin
from subscriptions.audit import audit_record
from subscriptions.models import Mailing, Permission, Subscriber
from subscriptions.services import mailings as mailing_services


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


# What an approval approves: a change to any of these withdraws it.
APPROVED_CONTENT = frozenset({"campaign", "kind", "topics", "subject", "body"})


@admin.register(Mailing)
class MailingAdmin(ScopedAdmin):
    form = MailingForm
    list_display = [
        "subject", "campaign", "kind", "status", "scheduled_at",
        "recipients_count", "sent_count", "failed_count", "remaining_count",
    ]  # fmt: skip
    list_filter = [("campaign", CampaignListFilter), "kind", "status"]
    filter_horizontal = ["topics"]
    actions = ["send_now", "schedule", "cancel", "approve", "send_test_to_me"]
    readonly_fields = [
        "preview_link", "status", "start_error", "created_by", "approved_by_name", "approved_at", "started_at",
        "finished_at", "recipients_count", "sent_count", "failed_count", "skipped_count", "unknown_count",
        "bounced_count", "complained_count", "opens_count", "clicks_count",
    ]  # fmt: skip

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Only a draft has no deliveries and no counts worth keeping. Deleting one that
        # went out would cascade through every delivery (by an unindexed column) and
        # list them all on the confirmation page; cancel it instead.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Mailing.Status.DRAFT)

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Once it has left the drafts, a mailing is a record of what was sent.
        if obj is not None and obj.status != Mailing.Status.DRAFT:
            return [*MailingForm.Meta.fields, *self.readonly_fields]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):  # type: ignore[no-untyped-def]
        super().save_related(request, form, formsets, change)
        changed = sorted(APPROVED_CONTENT.intersection(form.changed_data))
        if not changed:
            return
        # Whoever shaped the content may not be its second pair of eyes (mailing_approve).
        mailing_services.mailing_edited(mailing=form.instance, actor=request.user, fields=changed)
        # What was approved is not what would go once the content or audience changes.
        if change and mailing_services.mailing_approval_clear(mailing=form.instance, actor=request.user):
            messages.warning(request, "The draft changed, so its approval was withdrawn: it needs approving again.")

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
        mailing = self.get_object(request, str(mailing_id))
        if mailing is None or not self.has_view_permission(request, mailing):
            raise Http404(f"No mailing {mailing_id}.")
        subscriber = self._preview_person(request, mailing)
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

    def _preview_person(self, request: Any, mailing: Mailing) -> Subscriber | None:
        """The person `?subscriber=ID` names: their copy shows their first name, so it is a
        data request (the permission, in the mailing's campaign) and it is audited."""
        asked = request.GET.get("subscriber", "")
        if not asked:
            return None
        campaign_id = mailing.campaign_id
        permissions.require(request.user, campaign_id, Permission.DATA_REQUESTS, what="subscriber", object_id=asked)
        subscriber = Subscriber.objects.filter(pk=asked, campaign_id=campaign_id).first() if asked.isdigit() else None
        if subscriber is None:
            raise permissions.refuse(request.user, what="subscriber", object_id=asked, campaign_id=campaign_id)
        audit_record(
            actor=request.user, action="mailing_previewed_as_person", campaign_id=campaign_id,
            target_type="subscriber", target_id=subscriber.pk, mailing=mailing.pk,
        )  # fmt: skip
        return subscriber

    def _each(self, request, queryset, act, done: str) -> None:  # type: ignore[no-untyped-def]
        for mailing in queryset:
            try:
                act(mailing)
            except ValidationError as error:
                messages.error(request, f"“{mailing.subject}”: {' '.join(error.messages)}")
            else:
                messages.success(request, f"“{mailing.subject}”: {done}")

    @admin.action(description="Send now")
    def send_now(self, request, queryset):  # type: ignore[no-untyped-def]
        # Sending to everyone cannot be taken back: the member proves again it is them.
        if staff_auth.reauthentication_needed(request):
            # The action is replayed once they have confirmed (staff_auth).
            return staff_auth.reauthenticate_redirect(request, request.get_full_path())
        for mailing in queryset:
            try:
                mailing_services.mailing_send_now(mailing_id=mailing.pk, actor=request.user)
            except ValidationError as error:
                messages.error(request, f"“{mailing.subject}”: {' '.join(error.messages)}")
            else:
                self._report_start(request, mailing)
        return None

    def _report_start(self, request, mailing: Mailing) -> None:  # type: ignore[no-untyped-def]
        """What came of "Send now": where tasks run in-process (the demo) the mailing has
        already gone out, or failed to start, by the time the action returns."""
        mailing.refresh_from_db()
        if mailing.start_error and mailing.status == Mailing.Status.DRAFT:
            messages.error(request, f"“{mailing.subject}” could not start and is a draft again: {mailing.start_error}")
        elif mailing.start_error:  # started, then paused on a fault of the mailer's settings (services.sending)
            messages.error(request, f"“{mailing.subject}”: {mailing.start_error}")
        elif mailing.status == Mailing.Status.SENT:
            messages.success(
                request, f"“{mailing.subject}”: sent to {mailing.sent_count} of {mailing.recipients_count}."
            )
        else:
            messages.success(request, f"“{mailing.subject}”: sending has started.")

    @admin.action(description="Schedule for the time set on the mailing")
    def schedule(self, request, queryset):  # type: ignore[no-untyped-def]
        # A schedule is a send to everyone, a little later: the same proof as "Send now".
        if staff_auth.reauthentication_needed(request):
            return staff_auth.reauthenticate_redirect(request, request.get_full_path())

        def act(mailing: Mailing) -> None:
            if mailing.scheduled_at is None:
                raise ValidationError("Set the scheduled time on the mailing first.")
            mailing_services.mailing_schedule(mailing_id=mailing.pk, send_at=mailing.scheduled_at, actor=request.user)

        self._each(request, queryset, act, "scheduled.")
        return None

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):  # type: ignore[no-untyped-def]
        cancel = partial_call(mailing_services.mailing_cancel, actor=request.user)
        self._each(request, queryset, cancel, "cancelled; nothing more will be sent.")

    @admin.action(description="Approve (as a member who did not draft it)")
    def approve(self, request, queryset):  # type: ignore[no-untyped-def]
        approve = partial_call(mailing_services.mailing_approve, actor=request.user)
        self._each(request, queryset, approve, "approved.")

    @admin.action(description="Send a test to my own address")
    def send_test_to_me(self, request, queryset):  # type: ignore[no-untyped-def]
        def act(mailing: Mailing) -> None:
            mailing_services.mailing_send_test(
                mailing=mailing, to=request.user.email, first_name=request.user.first_name, actor=request.user
            )

        self._each(request, queryset, act, f"test sent to {request.user.email}.")


def partial_call(service, **fixed):  # type: ignore[no-untyped-def]
    """An admin action's per-mailing call of a service taking mailing_id."""
    return lambda mailing: service(mailing_id=mailing.pk, **fixed)
