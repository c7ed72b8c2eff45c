"""Create, or reset the password of, the demo staff account that `make run` prints."""

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from config.env import env_str

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create or reset the 'demo' superuser and print how to sign in. Refuses when DEBUG is off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (a local full-stack run). Never use this in production.",
        )

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        # A superuser with a known name and a password printed to a terminal is a hole
        # in any deployment that real people's data passes through.
        if not settings.DEBUG and not force:
            raise CommandError("DEBUG is off, so no demo account was created. Pass --force for a local full-stack run.")
        password = env_str("DEMO_PASSWORD") or secrets.token_urlsafe(12)
        user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"{'Created' if created else 'Reset'} the demo staff account.\n"
            f"  sign in at  {settings.SITE_URL}{reverse('admin:index')}\n"
            f"  username    {DEMO_USERNAME}\n"
            f"  password    {password}\n"
        )
