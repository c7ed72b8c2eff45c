"""Public forms. The sign-up form is built from a SignupForm version and its campaign."""

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from subscriptions.models import SignupForm, Topic

# Control characters (CR/LF above all: header injection) and markup characters.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f<>]")

# Keys every sign-up POST may carry besides the campaign's declared fields.
_BASE_KEYS = {"email", "first_name", "topics", "consent", "website", "stamp", "next", "csrfmiddlewaretoken"}


def validate_plain_text(value: str) -> None:
    if _UNSAFE_TEXT.search(value):
        raise ValidationError("Use letters, numbers and punctuation only: no line breaks or the characters < and >.")


class PlainTextField(forms.CharField):
    default_validators = [validate_plain_text]


def extra_field(spec: dict[str, Any]) -> forms.Field:
    common: dict[str, Any] = {"label": spec["label"], "help_text": spec.get("hint", ""), "required": spec["required"]}
    choices = [tuple(choice) for choice in spec.get("choices", [])]
    if spec["type"] == "choice":
        return forms.ChoiceField(choices=[("", "Select an option"), *choices], **common)
    if spec["type"] == "multichoice":
        return forms.MultipleChoiceField(choices=choices, widget=forms.CheckboxSelectMultiple, **common)
    return PlainTextField(max_length=spec.get("max_length") or 200, strip=True, **common)


def declared_fields(signup_form: SignupForm) -> dict[str, dict[str, Any]]:
    """The campaign's own fields this form collects, by name."""
    return {spec["name"]: spec for spec in signup_form.campaign.extra_fields if spec["name"] in signup_form.fields}


def signup_fields(signup_form: SignupForm, offered_topics: list[Topic]) -> dict[str, forms.Field]:
    """A sign-up form's fields in page order (see SignupFormFields)."""
    fields: dict[str, forms.Field] = {
        "email": forms.EmailField(
            label="Email address",
            max_length=254,
            error_messages={
                "required": "Enter your email address",
                "invalid": "Enter an email address in the correct format, like name@example.com",
                "max_length": "Email address must be 254 characters or fewer",
            },
        ),
        # A field people never see; bots that fill every input fill this too.
        "website": forms.CharField(required=False, label="Leave this field empty"),
        "stamp": forms.CharField(required=False, widget=forms.HiddenInput),
    }
    if signup_form.ask_first_name:
        fields["first_name"] = PlainTextField(
            label="First name",
            max_length=100,
            required=signup_form.first_name_required,
            error_messages={"required": "Enter your first name"},
        )
    if len(offered_topics) > 1:
        fields["topics"] = forms.MultipleChoiceField(
            label="What do you want to hear about?",
            choices=[(topic.slug, topic_label(topic)) for topic in offered_topics],
            help_text="Select all that apply.",
            widget=forms.CheckboxSelectMultiple,
            error_messages={"required": "Select at least one topic", "invalid_choice": "Select topics from the list"},
        )
    for name, spec in declared_fields(signup_form).items():
        fields[name] = extra_field(spec)
    fields["consent"] = forms.BooleanField(
        label=signup_form.consent_wording,
        error_messages={"required": "Confirm that you agree, to sign up"},
    )
    return fields


def topic_label(topic: Topic) -> str:
    return f"{topic.name} ({topic.public_status})" if topic.public_status else topic.name


class SignupFormFields(forms.Form):
    """The sign-up form of one SignupForm version; the fields' order is the page's order.

    Its fields depend only on the form version and its topics, so a caller that keeps
    them (the sign-up view does, per page version) passes them in as `fields` and they
    are shared, not rebuilt and deep-copied for every request: building and copying
    them was half the form's cost. Nothing modifies a field per request, here or in
    Django's validation and rendering (bound state lives on the form)."""

    def __init__(
        self,
        *args: Any,
        signup_form: SignupForm,
        offered_topics: list[Topic] | None = None,
        fields: dict[str, forms.Field] | None = None,
        **kwargs: Any,
    ) -> None:
        """`offered_topics` are the form's unarchived topics in page order, when the
        caller has them already (selectors.signup_page_get); otherwise they are read here."""
        # Our templates write their own labels; Django's default suffix (":") would be
        # looked up in the translation catalogue on every request.
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.signup_form = signup_form
        if offered_topics is None:
            offered_topics = list(signup_form.topics.filter(archived=False).order_by("position", "name"))
        self.offered_topics = offered_topics
        self.declared = declared_fields(signup_form)
        self.fields = dict(fields if fields is not None else signup_fields(signup_form, offered_topics))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        unknown = sorted(set(self.data.keys()) - _BASE_KEYS - set(self.declared)) if self.data else []
        if unknown:
            raise ValidationError(f"This form does not collect: {', '.join(unknown)}.")
        return cleaned

    def extra_fields(self) -> list[dict[str, Any]]:
        """The campaign's own fields with their kind, so the template picks the component."""
        return [{"field": self[name], "type": spec["type"]} for name, spec in self.declared.items()]

    def chosen_topics(self) -> list[Topic]:
        if "topics" not in self.fields:
            return self.offered_topics
        chosen = set(self.cleaned_data["topics"])
        return [topic for topic in self.offered_topics if topic.slug in chosen]

    def attributes(self) -> dict[str, Any]:
        values = {name: self.cleaned_data.get(name) for name in self.declared}
        return {name: value for name, value in values.items() if value not in (None, "", [])}


class ConfirmForm(forms.Form):
    """An empty form: the Confirm and Unsubscribe pages POST it, because GETs never act."""
