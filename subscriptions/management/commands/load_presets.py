from typing import Any

from django.core.management.base import BaseCommand

from subscriptions.services.presets import presets_load


class Command(BaseCommand):
    help = "Create the preset campaigns (idempotent: a second run changes nothing)."

    def handle(self, *args: Any, **options: Any) -> None:
        for report in presets_load():
            if report.created:
                self.stdout.write(f"{report.slug}: created ({len(report.changes)} items)")
            elif report.changes:
                self.stdout.write(f"{report.slug}: added {', '.join(report.changes)}")
            else:
                self.stdout.write(f"{report.slug}: unchanged")
