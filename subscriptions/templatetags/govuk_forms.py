"""Helpers behind templates/components/: ids, hints and widgets for GOV.UK form markup."""

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from django import template
from django.forms import BoundField, RadioSelect
from django.utils.safestring import SafeString

register = template.Library()


@dataclass(frozen=True)
class FieldParts:
    """What every component needs to label a field and tie its hint and error to it."""

    id: str
    hint: str
    hint_id: str
    error: str
    error_id: str

    @property
    def describedby(self) -> str:
        return " ".join(part for part in (self.hint and self.hint_id, self.error and self.error_id) if part)


@register.simple_tag
def field_parts(field: BoundField, hint: str = "") -> FieldParts:
    """`hint` overrides the field's help_text; one error is shown, as GOV.UK advises."""
    base_id = field.field.widget.attrs.get("id") or field.auto_id or field.html_name
    return FieldParts(
        id=base_id,
        hint=str(hint or field.help_text or ""),
        hint_id=f"{base_id}-hint",
        error=str(field.errors[0]) if field.errors else "",
        error_id=f"{base_id}-error",
    )


@register.filter
def field_anchor(field: BoundField) -> str:
    """The id an error summary link should move focus to: the first option of a choice group."""
    if isinstance(field.field.widget, RadioSelect):  # CheckboxSelectMultiple is a RadioSelect
        subwidgets = field.subwidgets
        if subwidgets:
            return str(subwidgets[0].id_for_label)
    return field.field.widget.attrs.get("id") or field.auto_id or field.html_name


@register.simple_tag
def govuk_widget(
    field: BoundField, css_class: str, *, error_class: str = "", extra_class: str = "", **attrs: object
) -> SafeString:
    """Render the field's own widget (so values, maxlength and choices stay Django's) with GOV.UK attributes.

    Empty arguments are dropped, so components pass their optional ones straight
    through; `type` swaps the input type on a copy of the widget, never on the form's.
    """
    classes = [css_class, error_class if field.errors else "", extra_class]
    html_attrs: dict[str, str | bool] = {
        name.replace("_", "-"): str(value) for name, value in attrs.items() if value not in ("", None)
    }
    html_attrs["class"] = " ".join(name for name in classes if name)
    widget = field.field.widget
    input_type = html_attrs.pop("type", "")
    if input_type and hasattr(widget, "input_type"):
        widget = copy.copy(widget)
        widget.input_type = str(input_type)
    return field.as_widget(widget=widget, attrs=html_attrs)


@register.filter
def item_hint(hints: Mapping[str, str] | None, value: object) -> str:
    """The hint for one checkbox or radio option, from a {value: hint} mapping."""
    if not hints:
        return ""
    return hints.get(str(value), "")
