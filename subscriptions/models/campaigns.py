"""A campaign and what it offers: privacy notices, topics and sign-up forms."""

import re

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

HEX_COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
hex_colour = RegexValidator(HEX_COLOUR_PATTERN, "Enter a colour as #RRGGBB.")
# These fields go into email headers (From, Reply-To, List-Unsubscribe): a line break
# in one would let whoever edits the campaign write headers of their own.
no_control_characters = RegexValidator(
    r"[\x00-\x1f\x7f]", "Use no line breaks, tabs or other control characters.", inverse_match=True
)
BRAND_COLOUR_DEFAULT = "#1d70b8"
TEXT_WHITE = "#ffffff"
TEXT_BLACK = "#000000"


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #RRGGBB colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


class Campaign(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        ERASED = "erased", "Erased"

    class TrackingMode(models.TextChoices):
        OFF = "off", "Off: nothing is tracked"
        AGGREGATE = "aggregate", "Aggregate: counts per mailing only"
        INDIVIDUAL = "individual", "Individual: per-person engagement"

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120, validators=[no_control_characters])
    description = models.TextField(blank=True)
    brand_colour = models.CharField(max_length=7, default=BRAND_COLOUR_DEFAULT, validators=[hex_colour])

    controller_name = models.CharField(max_length=200)
    controller_address = models.CharField(max_length=300, blank=True)
    contact_email = models.EmailField(blank=True)
    dpo_email = models.EmailField(blank=True)

    sender_name = models.CharField(max_length=120, validators=[no_control_characters])
    sender_email = models.EmailField(validators=[no_control_characters])
    inbound_unsubscribe = models.BooleanField(
        default=False, help_text="Accept 'unsubscribe me' emails sent to the inbound address."
    )
    inbound_address = models.EmailField(blank=True, validators=[no_control_characters])

    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(
        null=True, blank=True, help_text="When the campaign ends every subscriber's data is erased."
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.ACTIVE)
    tracking_mode = models.CharField(max_length=10, choices=TrackingMode, default=TrackingMode.AGGREGATE)

    pending_expiry_days = models.PositiveSmallIntegerField(default=7)
    reconfirm_after_days = models.PositiveIntegerField(null=True, blank=True)
    reconfirm_grace_days = models.PositiveSmallIntegerField(default=30)
    max_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Erase a person this long after their last confirmation."
    )
    delivery_retention_days = models.PositiveSmallIntegerField(default=30)

    # Declared extra sign-up fields: [{"name", "label", "hint", "type", "required",
    # "max_length", "choices"}]. A subscriber's attributes may hold only these names.
    extra_fields = models.JSONField(default=list, blank=True)
    # Hosts a cross-site embedded form may send people back to with `next`.
    redirect_allowlist = models.JSONField(default=list, blank=True)
    # Mailings to more than this many people need a second member's approval; empty: off.
    approval_threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Mailings to more than this many people must be approved by a member who did not draft them.",
    )

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def sender_domain(self) -> str:
        return self.sender_email.rpartition("@")[2]

    @property
    def brand_colour_css(self) -> str:
        """The brand colour, safe to put in a stylesheet even if a row skipped validation."""
        return self.brand_colour if re.fullmatch(HEX_COLOUR_PATTERN, self.brand_colour) else BRAND_COLOUR_DEFAULT

    @property
    def brand_text_colour(self) -> str:
        """White or black, whichever contrasts more with the brand colour.

        The better of the two always reaches at least 4.58:1, so header text meets
        WCAG AA (4.5:1) whatever colour staff pick.
        """
        luminance = relative_luminance(self.brand_colour_css)
        on_white = 1.05 / (luminance + 0.05)
        on_black = (luminance + 0.05) / 0.05
        return TEXT_WHITE if on_white >= on_black else TEXT_BLACK


class PrivacyNotice(models.Model):
    """One published version of a campaign's privacy notice; never edited after publishing."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="privacy_notices")
    version = models.PositiveIntegerField()
    url = models.URLField(max_length=500, help_text="Where the organisation publishes its full notice.")
    summary = models.TextField(help_text="Plain-English summary shown beside every form (Markdown).")
    retention_summary = models.CharField(max_length=300)
    published_on = models.DateField(null=True, blank=True)
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "version"], name="privacy_notice_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} notice v{self.version}"


class Topic(models.Model):
    class Kind(models.TextChoices):
        GENERAL = "general", "General updates"
        ENTITY = "entity", "Named entity"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="topics")
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.GENERAL)
    description = models.CharField(max_length=300, blank=True)
    # Public status of an entity, e.g. "Recruiting now"; shown beside its checkbox.
    public_status = models.CharField(max_length=80, blank=True)
    position = models.PositiveIntegerField(default=0)
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["campaign", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "slug"], name="topic_slug_unique_per_campaign"),
        ]

    def __str__(self) -> str:
        return self.name


class SignupForm(models.Model):
    """A version of one public form. Editing makes a new version; evidence keeps the old."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="forms")
    slug = models.SlugField(max_length=60)
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    title = models.CharField(max_length=150)
    intro = models.TextField(blank=True)
    topics = models.ManyToManyField(Topic, related_name="forms")
    ask_first_name = models.BooleanField(default=True)
    first_name_required = models.BooleanField(default=False)
    fields = models.JSONField(default=list, blank=True, help_text="Names of the campaign's extra fields asked.")
    consent_wording = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "slug", "version"], name="signup_form_version_unique"),
            models.UniqueConstraint(
                fields=["campaign", "slug"], condition=Q(is_current=True), name="signup_form_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"
