"""Fill the zero-configuration demo's preset campaigns with some weeks of generated daily counts."""

import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.services.demo_history import DEFAULT_SEED, DEFAULT_WEEKS, demo_history_generate


class Command(BaseCommand):
    help = (
        "Replace the preset campaigns' daily counts over the last weeks (up to yesterday) with generated ones, "
        "so the demo's dashboard has something to show. Counts only: no people, no consent records. "
        "Running it again gives the same counts. Refuses when DEBUG is off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--weeks", type=int, default=DEFAULT_WEEKS, help=f"How many weeks (default {DEFAULT_WEEKS})."
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Another seed gives other counts.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (a local full-stack demo). Never use this on real data.",
        )

    def handle(self, *args: Any, weeks: int, seed: int, force: bool = False, **options: Any) -> None:
        # The generated counts replace the real ones in the range: on a real
        # installation that would destroy the only record that outlives erasure.
        if not settings.DEBUG and not force:
            raise CommandError(
                "DEBUG is off, so no demo history was generated: it would replace the preset campaigns' real "
                "daily counts. Pass --force only for a local demo database."
            )
        if not 1 <= weeks <= 104:
            raise CommandError("--weeks must be between 1 and 104.")
        reports = demo_history_generate(weeks=weeks, seed=seed)
        if not reports:
            raise CommandError("There are no preset campaigns yet: run `manage.py load_presets` first.")
        for report in reports:
            self.stdout.write(
                f"{report.slug}: generated counts from {_date(report.since)} to {_date(report.until)} "
                f"({report.signups:,} sign-ups, {report.rows:,} daily counts)"
            )


def _date(day: datetime.date) -> str:
    return f"{day.day} {day:%B %Y}"
