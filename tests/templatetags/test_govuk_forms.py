"""templates/components/ with a small Django form: ids, error states and aria-describedby."""

from html.parser import HTMLParser

from django import forms
from django.template import Context, Template

PAGE = Template(
    "{% include 'components/error_summary.html' with form=form only %}"
    "{% include 'components/input.html' with field=form.email type='email' autocomplete='email' only %}"
    "{% include 'components/checkboxes.html' with field=form.topics small=True item_hints=hints only %}"
    "{% include 'components/radios.html' with field=form.frequency inline=True only %}"
    "{% include 'components/select.html' with field=form.region only %}"
    "{% include 'components/textarea.html' with field=form.message only %}"
    "{% include 'components/consent.html' with field=form.consent only %}"
    "{% include 'components/button.html' with text='Sign up' only %}"
)


class ExampleForm(forms.Form):
    email = forms.EmailField(label="Email address", help_text="We only use it to send your updates.")
    topics = forms.MultipleChoiceField(
        label="What do you want to hear about?",
        choices=[("kent", "Kent Police"), ("essex", "Essex Police")],
        widget=forms.CheckboxSelectMultiple,
    )
    frequency = forms.ChoiceField(choices=[("weekly", "Weekly"), ("monthly", "Monthly")], widget=forms.RadioSelect)
    region = forms.ChoiceField(choices=[("", "Select a region"), ("north", "North")], required=False)
    message = forms.CharField(widget=forms.Textarea, required=False)
    consent = forms.BooleanField(label="I agree to get these emails")


class Elements(HTMLParser):
    """Every element's attributes by id, plus every element in order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.all: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        self.all.append((tag, attributes))
        if "id" in attributes:
            self.by_id[attributes["id"]] = attributes

    def with_class(self, css_class: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.all if css_class in attrs.get("class", "").split()]


def render(form: forms.Form, hints: dict[str, str] | None = None) -> tuple[str, Elements]:
    html = PAGE.render(Context({"form": form, "hints": hints or {}}))
    return html, Elements(html)


def test_an_invalid_form_gets_a_summary_linking_each_error_to_its_field():
    _, elements = render(ExampleForm(data={"email": "not-an-address", "topics": ["essex"]}))
    summary = elements.with_class("govuk-error-summary")
    assert summary[0]["data-module"] == "govuk-error-summary"
    assert any(attrs.get("role") == "alert" for _, attrs in elements.all)
    links = [attrs["href"] for tag, attrs in elements.all if tag == "a"]
    assert links == ["#id_email", "#id_frequency_0", "#id_consent"]
    for target in links:
        assert target[1:] in elements.by_id


def test_an_input_with_an_error_is_described_by_its_hint_and_error():
    html, elements = render(ExampleForm(data={"email": "not-an-address"}))
    email = elements.by_id["id_email"]
    assert email["type"] == "email"
    assert email["autocomplete"] == "email"
    assert email["class"].split() == ["govuk-input", "govuk-input--error"]
    assert email["aria-describedby"] == "id_email-hint id_email-error"
    assert "govuk-hint" in elements.by_id["id_email-hint"]["class"]
    assert "govuk-error-message" in elements.by_id["id_email-error"]["class"]
    assert '<span class="govuk-visually-hidden">Error:</span> Enter a valid email address.' in html
    assert email["value"] == "not-an-address"


def test_checkbox_groups_describe_the_fieldset_and_keep_what_was_chosen():
    html, elements = render(ExampleForm(data={"email": "a@example.com"}), hints={"essex": "Recruiting now"})
    fieldsets = [attrs for tag, attrs in elements.all if tag == "fieldset"]
    assert fieldsets[0]["aria-describedby"] == "id_topics-error"
    assert elements.with_class("govuk-checkboxes--small")
    assert elements.by_id["id_topics_0"]["name"] == "topics"
    assert elements.by_id["id_topics_1"]["aria-describedby"] == "id_topics_1-item-hint"
    assert "Recruiting now" in html

    _, chosen = render(ExampleForm(data={"topics": ["essex"]}))
    assert "checked" in chosen.by_id["id_topics_1"]
    assert "checked" not in chosen.by_id["id_topics_0"]


def test_every_field_in_error_marks_its_form_group():
    _, elements = render(ExampleForm(data={}))
    assert len(elements.with_class("govuk-form-group--error")) == 4  # email, topics, frequency, consent
    assert len(elements.with_class("govuk-form-group")) == 6


def test_the_consent_checkbox_is_tied_to_its_error_and_remembers_a_tick():
    _, missing = render(ExampleForm(data={}))
    assert missing.by_id["id_consent"]["aria-describedby"] == "id_consent-error"
    assert missing.by_id["id_consent"]["type"] == "checkbox"

    _, ticked = render(ExampleForm(data={"consent": "yes"}))
    assert "checked" in ticked.by_id["id_consent"]
    assert "aria-describedby" not in ticked.by_id["id_consent"]


def test_an_untouched_form_shows_no_errors():
    html, elements = render(ExampleForm())
    assert "govuk-error-summary" not in html
    assert "govuk-error-message" not in html
    assert elements.by_id["id_email"]["aria-describedby"] == "id_email-hint"
    assert "aria-describedby" not in elements.by_id["id_region"]
    assert elements.by_id["id_region"]["class"] == "govuk-select"
    assert elements.by_id["id_message"]["rows"] == "5"
    assert elements.with_class("govuk-radios--inline")
    button = elements.with_class("govuk-button")[0]
    assert button["type"] == "submit"
    assert "name" not in button


def test_overriding_the_input_type_leaves_the_form_class_alone():
    render(ExampleForm())
    assert ExampleForm().fields["email"].widget.input_type == "email"
    assert (
        Template("{% include 'components/input.html' with field=form.email type='text' only %}")
        .render(Context({"form": ExampleForm()}))
        .count('type="text"')
        == 1
    )
    assert ExampleForm().fields["email"].widget.input_type == "email"
