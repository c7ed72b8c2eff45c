"""Create, or reset, the demo staff account that `make run` prints, second factor included."""

import secrets
from typing import Any

from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse

from config.env import env_str
from subscriptions.models import Campaign, Membership, Permission

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = (
        "Create or reset the 'demo' superuser, a member of every campaign with every permission, with a fresh "
        "authenticator-app secret and recovery codes, and print how to sign in. Refuses when DEBUG is off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (a local full-stack run). Never use this in production.",
        )

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        # A superuser with a known name, password and second factor printed to a terminal
        # is a hole in any deployment that real people's data passes through.
        if not settings.DEBUG and not force:
            raise CommandError("DEBUG is off, so no demo account was created. Pass --force for a local full-stack run.")
        password = self._password()
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save()
            campaigns = self._join_every_campaign(user)
            secret, codes = self._fresh_second_factor(user)
        self._print(user, created=created, password=password, secret=secret, codes=codes, campaigns=campaigns)

    def _password(self) -> str:
        password = env_str("DEMO_PASSWORD") or secrets.token_urlsafe(12)
        try:
            validate_password(password)
        except ValidationError as error:
            raise CommandError(f"DEMO_PASSWORD breaks the password rules: {' '.join(error.messages)}") from None
        return password

    def _join_every_campaign(self, user: User) -> int:
        everything = [value for value, _label in Permission.choices]
        campaigns = list(Campaign.objects.all())
        for campaign in campaigns:
            Membership.objects.update_or_create(user=user, campaign=campaign, defaults={"permissions": everything})
        return len(campaigns)

    def _fresh_second_factor(self, user: User) -> tuple[str, list[str]]:
        """Replace the demo's authenticators with a new app secret and new recovery codes, via allauth."""
        Authenticator.objects.filter(user=user).delete()
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
        codes = RecoveryCodes.activate(user).get_unused_codes()
        return secret, codes

    def _print(
        self, user: User, *, created: bool, password: str, secret: str, codes: list[str], campaigns: int
    ) -> None:
        otpauth = get_mfa_adapter().build_totp_url(user, secret)
        self.stdout.write(
            f"{'Created' if created else 'Reset'} the demo staff account "
            f"(a member of all {campaigns} campaigns, with every permission).\n"
            f"  sign in at       {settings.SITE_URL}{reverse('account_login')}\n"
            f"  Django admin     {settings.SITE_URL}{reverse('admin:index')} (after signing in)\n"
            f"  username         {DEMO_USERNAME}\n"
            f"  password         {password}\n"
            f"  TOTP secret      {secret}\n"
            f"  otpauth URI      {otpauth}\n"
            f"  recovery codes   {' '.join(codes)}\n"
            "Sign in with the username and password, then give the 6-digit code an authenticator app\n"
            "shows for the TOTP secret (add it by hand, or open the otpauth URI), or one recovery code\n"
            "(each works once). Running this command again makes a new password, secret and codes.\n"
        )
