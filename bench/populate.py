"""Bulk-loading people for benchmarks: COPY, as sign-up would store them."""

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for annotations: the models import once the benchmark has set Django up.
    from subscriptions.models import Campaign


def copy_active_subscribers(
    campaign: "Campaign", count: int, *, email: Callable[[int], str], first_name: Callable[[int], str]
) -> None:
    """`count` active subscribers of `campaign` in one COPY: person i gets `email(i)`
    and `first_name(i)`, the keyed address hash sign-up stores and a fresh link key;
    every other column takes the model's default."""
    from django.db import connection
    from psycopg.types.json import Jsonb

    from subscriptions.models import Subscriber

    template = Subscriber(campaign=campaign, status="active", email="x@example.org")
    fields = [f for f in Subscriber._meta.concrete_fields if not f.primary_key]
    defaults = {}
    for f in fields:
        value = f.get_db_prep_save(f.pre_save(template, True), connection)
        defaults[f.column] = Jsonb(getattr(template, f.attname)) if f.get_internal_type() == "JSONField" else value
    columns = [str(f.column) for f in fields]
    key = os.environ["SUPPRESSION_KEY"].encode()
    statement = f"COPY subscriptions_subscriber ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for i in range(count):
            address = email(i)
            row = defaults | {
                "email": address,
                "email_hmac": hmac.new(key, address.encode(), hashlib.sha256).hexdigest(),
                "first_name": first_name(i),
                "link_key": secrets.token_hex(16),
            }
            copy.write_row([row[c] for c in columns])
