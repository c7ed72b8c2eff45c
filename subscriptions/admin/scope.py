"""The admin, scoped to campaign teams: every list, object, filter, form choice and action
of a ModelAdmin is checked against the member's campaigns through `subscriptions.permissions`.

Django's global model permissions grant nothing here: what a member may do comes from
their memberships (`permissions.ADMIN_RULES`); platform operators (superusers) may do
everything the ModelAdmin allows at all. An id from the browser naming another
campaign's row is a 404, recorded in the audit trail.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import ActionLocation
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404

from subscriptions import permissions
from subscriptions.audit import audit_record
from subscriptions.models import Campaign, Topic

# Query-string parameters Django's list filters use, by the kind of field filtered.
FILTER_SUFFIXES = {False: ("__exact", "__isnull"), True: ("__id__exact", "__isnull")}


def campaign_id_of(obj: Model, via: str) -> int | None:
    """The campaign of `obj`, reached by the lookup `via` ("campaign", "topic__campaign", "pk")."""
    *path, last = via.split("__")
    target: Any = obj
    for part in path:
        target = getattr(target, part)
    return target.pk if last == "pk" else getattr(target, f"{last}_id")


def topic_label(topic: Topic) -> str:
    """Topics are always named with their campaign: many campaigns have a "General updates"."""
    return f"{topic.name} — {topic.campaign.name}"


class RefusingChoiceMixin:
    """A choice field whose refusals of another campaign's row are audited, not just rejected."""

    user: Any = None
    everything: QuerySet[Any] | None = None

    def _note_refused(self, values: list[Any]) -> None:
        if self.everything is None:
            return
        offered: QuerySet[Any] = self.queryset  # type: ignore[attr-defined]
        for value in values:
            if not str(value).isdigit() or offered.filter(pk=value).exists():
                continue
            if self.everything.filter(pk=value).exists():
                name = self.everything.model._meta.model_name or "object"
                permissions.refuse(self.user, what=name, object_id=int(value))


class ScopedChoiceField(RefusingChoiceMixin, forms.ModelChoiceField):
    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except ValidationError:
            self._note_refused([value])
            raise

    def label_from_instance(self, obj: Any) -> str:
        return topic_label(obj) if isinstance(obj, Topic) else super().label_from_instance(obj)


class ScopedMultipleChoiceField(RefusingChoiceMixin, forms.ModelMultipleChoiceField):
    def _check_values(self, value: Any) -> Any:
        try:
            return super()._check_values(value)  # type: ignore[misc]
        except ValidationError:
            self._note_refused(list(value))
            raise

    def label_from_instance(self, obj: Any) -> str:
        return topic_label(obj) if isinstance(obj, Topic) else super().label_from_instance(obj)


class CampaignListFilter(admin.RelatedFieldListFilter):
    """The campaign filter, offering only the member's campaigns."""

    def has_output(self) -> bool:
        # Shown with a single campaign too, so a member can narrow a list to it.
        return bool(self.lookup_choices)

    def field_choices(self, field, request, model_admin):  # type: ignore[no-untyped-def]
        allowed = permissions.admin_campaign_ids(request.user, model_admin.model._meta.model_name, "view")
        return field.get_choices(include_blank=False, limit_choices_to={"pk__in": allowed})


class ScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose every answer comes from the member's campaigns."""

    # The lookup from a row to its campaign's id: "campaign", "topic__campaign", "pk".
    campaign_via = "campaign"
    # Evidence and ledgers: no page adds, changes or deletes them, operators included.
    read_only = False
    # Filtering this list is searching personal data: each filtered page is audited.
    personal_data = False
    # Opening one of its rows is audited too (`<model>_viewed`).
    record_views = False

    @property
    def rule_name(self) -> str:
        return self.model._meta.model_name or ""

    def may(self, request: Any, action: str, obj: Model | None = None) -> bool:
        campaign_id = campaign_id_of(obj, self.campaign_via) if obj is not None else None
        if obj is not None and campaign_id is None:
            return permissions.is_operator(request.user)
        return permissions.admin_allows(request.user, self.rule_name, action, campaign_id)

    def has_module_permission(self, request):  # type: ignore[no-untyped-def]
        return self.may(request, "view")

    def has_view_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.may(request, "view", obj)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return not self.read_only and self.may(request, "add")

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return not self.read_only and self.may(request, "change", obj)

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return not self.read_only and self.may(request, "delete", obj)

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return permissions.admin_scoped(request.user, super().get_queryset(request), "view", via=self.campaign_via)

    def get_object(self, request, object_id, from_field=None):  # type: ignore[no-untyped-def]
        obj = super().get_object(request, object_id, from_field)
        if obj is None and from_field is None and str(object_id).isdigit():
            # Another campaign's row: to this member it does not exist, and asking is recorded.
            other = self.model._default_manager.filter(pk=object_id).first()
            if other is not None:
                raise permissions.refuse(
                    request.user, what=self.rule_name, object_id=int(object_id),
                    campaign_id=campaign_id_of(other, self.campaign_via),
                )  # fmt: skip
        return obj

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):  # type: ignore[no-untyped-def]
        # Django redirects with "does not exist"; another campaign's row is a 404. Answer
        # both alike, or a member could learn which ids other campaigns hold.
        raise Http404(f"No {self.rule_name} {object_id}.")

    # Django runs these two views in a transaction: a refusal raised inside would roll back
    # its own audit event. Looking the object up first refuses (and records) outside it.
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        if object_id is not None:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None and self.record_views and self.has_view_permission(request, obj):
                # Opening one row of personal data is looking at someone's data.
                audit_record(
                    actor=request.user, action=f"{self.rule_name}_viewed", target_type=self.rule_name,
                    campaign_id=campaign_id_of(obj, self.campaign_via), target_id=obj.pk,
                )  # fmt: skip
        elif request.method == "POST" and not self.has_add_permission(request):
            raise permissions.refuse(request.user, what=self.rule_name, object_id="new")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):  # type: ignore[no-untyped-def]
        self.get_object(request, unquote(object_id))
        return super().delete_view(request, object_id, extra_context)

    def save_form(self, request, form, change):  # type: ignore[no-untyped-def]
        # The form's choices already leave out other campaigns; this is the last word.
        obj = super().save_form(request, form, change)
        if not self.may(request, "change" if change else "add", obj):
            raise permissions.refuse(
                request.user, what=self.rule_name, object_id=obj.pk or "new",
                campaign_id=campaign_id_of(obj, self.campaign_via),
            )  # fmt: skip
        return obj

    # --- Form choices -------------------------------------------------------------------
    def _editable_campaigns(self, request: Any) -> set[int]:
        user = request.user
        return permissions.admin_campaign_ids(user, self.rule_name, "add") | permissions.admin_campaign_ids(
            user, self.rule_name, "change"
        )

    def _scope_choices(self, db_field: Any, request: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        remote = db_field.remote_field.model
        everything = kwargs["queryset"] if "queryset" in kwargs else remote._default_manager.all()
        allowed = self._editable_campaigns(request)
        if remote is Campaign:
            kwargs["queryset"] = everything.filter(pk__in=allowed)
        elif any(field.name == "campaign" for field in remote._meta.fields):
            kwargs["queryset"] = everything.filter(campaign__in=allowed).select_related("campaign")
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        field = super().formfield_for_foreignkey(db_field, request, **self._scope_choices(db_field, request, kwargs))
        return self._refusing(field, ScopedChoiceField, db_field, request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        field = super().formfield_for_manytomany(db_field, request, **self._scope_choices(db_field, request, kwargs))
        return self._refusing(field, ScopedMultipleChoiceField, db_field, request)

    def _refusing(self, field: Any, kind: type[RefusingChoiceMixin], db_field: Any, request: Any) -> Any:
        if field is None:
            return None
        # The refusing kind of the same field, so a crafted id of another campaign is recorded.
        if type(field) in (forms.ModelChoiceField, forms.ModelMultipleChoiceField):
            field.__class__ = kind
        field.user, field.everything = request.user, db_field.remote_field.model._default_manager.all()
        return field

    # --- Query-string lookups -----------------------------------------------------------
    def _filter_paths(self, request: Any) -> list[str]:
        paths: list[str] = []
        for item in self.get_list_filter(request):
            if isinstance(item, (list, tuple)):
                paths.append(str(item[0]))
            elif isinstance(item, str):
                paths.append(item)
        return paths

    def _campaign_params(self, request: Any) -> set[str]:
        return {f"{path}__id__exact" for path in self._filter_paths(request) if path.split("__")[-1] == "campaign"}

    def lookup_allowed(self, lookup, value, request):  # type: ignore[no-untyped-def]
        # Only the designed filters: any other lookup (`email__regex`, `details__icontains`)
        # would search personal data past the exact, audited search.
        allowed = {
            f"{path}{suffix}"
            for path in self._filter_paths(request)
            for suffix in FILTER_SUFFIXES[get_fields_from_path(self.model, path)[-1].is_relation]
        }
        if lookup not in allowed:
            return False
        theirs = lookup not in self._campaign_params(request) or (
            str(value).isdigit() and self.may_view_campaign(request, int(value))
        )
        if not theirs:
            permissions.refuse(request.user, what="campaign", object_id=value)
        return theirs

    def may_view_campaign(self, request: Any, campaign_id: int) -> bool:
        return campaign_id in permissions.admin_campaign_ids(request.user, self.rule_name, "view")

    def get_changelist_instance(self, request):  # type: ignore[no-untyped-def]
        changelist = super().get_changelist_instance(request)
        filters = changelist.get_filters_params()
        campaign_params = self._campaign_params(request)
        # A search within one campaign is audited by the search itself (services.privacy).
        searched = bool(changelist.query) and set(filters) <= campaign_params
        if self.personal_data and filters and not searched:
            chosen = [values[-1] for key, values in filters.items() if key in campaign_params and values]
            audit_record(
                actor=request.user, action="personal_data_filtered", target_type=self.rule_name,
                campaign_id=int(chosen[0]) if chosen else None, filters=dict(filters),
            )  # fmt: skip
        return changelist

    # --- Actions --------------------------------------------------------------------------
    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):  # type: ignore[no-untyped-def]
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)
        return {name: action for name, action in actions.items() if self.may(request, name)}

    def changelist_view(self, request, extra_context=None):  # type: ignore[no-untyped-def]
        # Before Django looks at the action: ticking a row the member may not act on (another
        # campaign's, or theirs without the permission) is refused and recorded, whether or
        # not Django would have offered the action at all.
        if request.method == "POST" and "action" in request.POST:
            self._refuse_unpermitted(request, self._chosen_action(request, ActionLocation.CHANGE_LIST))
        return super().changelist_view(request, extra_context)

    def _refuse_unpermitted(self, request: Any, action: str) -> None:
        allowed = permissions.admin_campaign_ids(request.user, self.rule_name, action)
        selected = [value for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if value.isdigit()]
        for obj in self.model._default_manager.filter(pk__in=selected):
            campaign_id = campaign_id_of(obj, self.campaign_via)
            if campaign_id not in allowed:
                raise permissions.refuse(request.user, what=self.rule_name, object_id=obj.pk, campaign_id=campaign_id)

    def response_action(self, request, queryset, action_location=ActionLocation.CHANGE_LIST):  # type: ignore[no-untyped-def]
        action = self._chosen_action(request, action_location)
        if action_location != ActionLocation.CHANGE_LIST:
            self._refuse_unpermitted(request, action)
        # "Select all" acts on the whole list: only the rows of campaigns where the action is allowed.
        queryset = permissions.admin_scoped(request.user, queryset, action, via=self.campaign_via)
        return super().response_action(request, queryset, action_location)

    def _chosen_action(self, request: Any, action_location: ActionLocation) -> str:
        # As Django's response_action reads it: the form whose button was pushed.
        prefix = "" if action_location == ActionLocation.CHANGE_LIST else f"{action_location.value}-"
        try:
            return request.POST.getlist(f"{prefix}action")[int(request.POST.get("index", 0))]
        except (IndexError, ValueError):
            return ""


class ReadOnlyAdmin(ScopedAdmin):
    read_only = True
