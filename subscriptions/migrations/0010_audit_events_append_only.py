"""The audit table refuses UPDATE and DELETE (PostgreSQL; the SQLite demo has none).

The one exception is the retention job (`subscriptions.audit.audit_retention_purge`),
which sets the transaction-local `tidings.audit_retention` flag before deleting rows
past their retention. Anyone who can run SQL as the app's role could set it too: the
trigger guards against the application, its pages and mistakes, not against a
database administrator.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION tidings_audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('tidings.audit_retention', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION USING
    MESSAGE = 'audit events are append-only: ' || TG_OP || ' refused',
    ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_event_append_only
  BEFORE UPDATE OR DELETE ON subscriptions_auditevent
  FOR EACH ROW EXECUTE FUNCTION tidings_audit_event_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_append_only ON subscriptions_auditevent;
DROP FUNCTION IF EXISTS tidings_audit_event_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0009_staff_teams_api_keys_audit_snapshot")]

    operations = [migrations.RunPython(create, drop)]
