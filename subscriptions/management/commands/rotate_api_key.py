from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.models import Campaign
from subscriptions.services.api_keys import api_key_rotate


class Command(BaseCommand):
    help = (
        "Issue a new sign-up API key named 'Default' for a campaign; the key it replaces keeps "
        "working for API_KEY_ROTATION_OVERLAP_HOURS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_slug")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign_slug"]).first()
        if campaign is None:
            raise CommandError(f"No campaign with slug {options['campaign_slug']!r}.")
        key = api_key_rotate(campaign=campaign)
        self.stdout.write(f"New API key for {campaign.slug} (shown once, store it now):\n{key}")
