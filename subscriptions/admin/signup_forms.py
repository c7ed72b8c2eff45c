"""The Signup form admin. Saving an edit publishes the form's next version
(services.signup_forms); a published version is evidence of what people agreed to, so
no page changes or deletes it, operators included: only the current version is
editable, and what it was is kept as the previous version.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse

from subscriptions.admin.scope import CampaignListFilter, ScopedAdmin
from subscriptions.models import SignupForm
from subscriptions.services import signup_forms

EDITABLE = ["title", "intro", "topics", "ask_first_name", "first_name_required", "fields", "consent_wording"]
# Which form and which version a row is: set on publishing, never edited.
IDENTITY = ["campaign", "slug", "version", "is_current", "created_at"]


class SignupFormForm(forms.ModelForm):
    class Meta:
        model = SignupForm
        fields = ["campaign", "slug", *EDITABLE]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        fields = cleaned.get("fields")
        if fields is not None and not (isinstance(fields, list) and all(isinstance(name, str) for name in fields)):
            self.add_error("fields", 'Give a list of the campaign\'s field names, such as ["postcode"].')
            return cleaned
        editing = self.instance.pk is not None
        campaign = self.instance.campaign if editing else cleaned.get("campaign")
        slug = self.instance.slug if editing else cleaned.get("slug")
        if campaign is None or not slug:
            return cleaned
        try:
            signup_forms.signup_form_check(
                campaign=campaign, slug=slug, topics=cleaned.get("topics") or [], fields=fields or [],
                replacing=self.instance if editing else None,
            )  # fmt: skip
        except ValidationError as error:
            self.add_error(None, error)
        return cleaned


@admin.register(SignupForm)
class SignupFormAdmin(ScopedAdmin):
    form = SignupFormForm
    list_display = ["title", "campaign", "slug", "version", "is_current"]
    list_filter = [("campaign", CampaignListFilter), "is_current"]
    filter_horizontal = ["topics"]

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return ["campaign", "slug", *EDITABLE] if obj is None else [*IDENTITY, *EDITABLE]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return [] if obj is None else IDENTITY

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # An earlier version is what earlier people agreed to: shown, never edited.
        return (obj is None or obj.is_current) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # `obj` holds the edit in memory only: the service writes a new row, never this one.
        data = form.cleaned_data
        try:
            published = signup_forms.signup_form_publish(
                campaign=obj.campaign, slug=obj.slug, topics=data["topics"], actor=request.user,
                replacing=obj if change else None, **{name: data[name] for name in EDITABLE if name != "topics"},
            )  # fmt: skip
        except ValidationError as error:  # someone published meanwhile: the form's check ran before
            request.signup_form_refused = True
            messages.error(request, " ".join(error.messages))
            return
        if change and published.pk == obj.pk:
            messages.info(request, "Nothing differed from the current version, so no new version was published.")
        elif change:
            messages.success(
                request, f"Published version {published.version}. Version {obj.version} is kept unchanged: it is "
                "the record of what people who signed up on it agreed to.",
            )  # fmt: skip
        # From here on the admin (its log, its redirect) speaks of the version published.
        obj.pk, obj.version, obj.is_current, obj.created_at = (
            published.pk, published.version, True, published.created_at
        )  # fmt: skip

    def save_related(self, request, form, formsets, change):  # type: ignore[no-untyped-def]
        # The service set the new version's topics; saving them here would write the old row.
        return

    def response_add(self, request, obj, post_url_continue=None):  # type: ignore[no-untyped-def]
        if getattr(request, "signup_form_refused", False):
            return HttpResponseRedirect(reverse("admin:subscriptions_signupform_changelist"))
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):  # type: ignore[no-untyped-def]
        if getattr(request, "signup_form_refused", False):
            return HttpResponseRedirect(reverse("admin:subscriptions_signupform_changelist"))
        return super().response_change(request, obj)
