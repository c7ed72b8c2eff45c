"""`|markdown`: staff-written Markdown (privacy summaries) as safe GOV.UK-styled HTML."""

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

ALLOWED_TAGS = {"p", "ul", "ol", "li", "a", "strong", "em", "h2", "h3", "h4", "br"}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
# GOV.UK Frontend styles nothing without a class, so the sanitiser adds them after cleaning.
GOVUK_CLASSES = {
    "p": {"class": "govuk-body"},
    "ul": {"class": "govuk-list govuk-list--bullet"},
    "ol": {"class": "govuk-list govuk-list--number"},
    "a": {"class": "govuk-link"},
    "h2": {"class": "govuk-heading-m"},
    "h3": {"class": "govuk-heading-s"},
    "h4": {"class": "govuk-heading-s"},
}


@register.filter(is_safe=True)
def markdown(text: str | None) -> SafeString:
    html = markdown_lib.markdown(text or "", output_format="html")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href"}},
        url_schemes=ALLOWED_URL_SCHEMES,
        set_tag_attribute_values=GOVUK_CLASSES,
    )
    # Safe: nh3 has kept only the tags, attributes and URL schemes listed above.
    return mark_safe(cleaned)
