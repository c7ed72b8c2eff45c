"""Forms of the preference centre and the lost-link page.

Field building is shared with the sign-up form (forms.py), so a campaign's extra
fields and its topic labels look and validate the same on both.
"""

from typing import Any

from django import forms

from subscriptions.forms import PlainTextField, extra_field, topic_label
from subscriptions.models import Subscriber, Topic

_EMAIL_ERRORS = {
    "required": "Enter your email address",
    "invalid": "Enter an email address in the correct format, like name@example.com",
    "max_length": "Email address must be 254 characters or fewer",
}


def _topics_field(topics: list[Topic], label: str, hint: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label,
        help_text=hint,
        required=False,
        choices=[(str(topic.pk), topic_label(topic)) for topic in topics],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Select topics from the list"},
    )


class PreferencesForm(forms.Form):
    """Topics (general and entity, any mix), first name, and the extra details held.

    Only extra details the person already has are shown: this is for correcting
    what is held, and the preference centre never asks for more.
    """

    def __init__(
        self, *args: Any, subscriber: Subscriber, topics: list[Topic], open_ids: set[int], **kwargs: Any
    ) -> None:
        general = [topic for topic in topics if topic.kind == Topic.Kind.GENERAL]
        entities = [topic for topic in topics if topic.kind == Topic.Kind.ENTITY]
        kwargs["initial"] = {
            "general": [str(topic.pk) for topic in general if topic.pk in open_ids],
            "entities": [str(topic.pk) for topic in entities if topic.pk in open_ids],
            "first_name": subscriber.first_name,
            **subscriber.attributes,
        }
        super().__init__(*args, **kwargs)
        if general:
            self.fields["general"] = _topics_field(general, "General updates", "")
        if entities:
            self.fields["entities"] = _topics_field(entities, "Updates about", "Select as many as you like, or none.")
        self.fields["first_name"] = PlainTextField(label="First name", max_length=100, required=False, strip=True)
        self.declared = {
            spec["name"]: spec for spec in subscriber.campaign.extra_fields if spec["name"] in subscriber.attributes
        }
        for name, spec in self.declared.items():
            self.fields[name] = extra_field({**spec, "required": False})

    def chosen_topic_ids(self) -> set[int]:
        chosen = [*self.cleaned_data.get("general", []), *self.cleaned_data.get("entities", [])]
        return {int(value) for value in chosen}

    def attributes(self) -> dict[str, Any]:
        values = {name: self.cleaned_data.get(name) for name in self.declared}
        return {name: value for name, value in values.items() if value not in (None, "", [])}

    def extra_fields(self) -> list[dict[str, Any]]:
        return [{"field": self[name], "type": spec["type"]} for name, spec in self.declared.items()]


class EmailForm(forms.Form):
    """One email address: the new address of an email change, or the lost-link request."""

    email = forms.EmailField(label="Email address", max_length=254, error_messages=_EMAIL_ERRORS)
