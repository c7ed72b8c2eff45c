"""The sending engine, one module per step: fan_out (a mailing's deliveries), start (due
mailings set going), claims (claim and mark batches), batch (send one batch through the
ESP's faults), run (one send task's batches), pause, stop, send_tasks (queueing and the
heartbeat), sweep (lost claims and tasks); ratelimit, reconcile (ESP webhooks) and
portable (the demo's SQLite) beside them.

The database is the record and the queue only a hint; at most one email per person
per mailing (docs/adr/0003-at-most-once-sending-and-unknown.md).
"""
