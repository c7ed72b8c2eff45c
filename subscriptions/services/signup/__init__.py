"""Double opt-in sign-up, taken in through a sealed Redis stream and confirmed from the inbox.

- request.py: signup_request, a validated sign-up admitted under the rate limits and
  appended to the intake stream (the page never waits on PostgreSQL);
- entry.py: SignupEntry, the accepted sign-up as the stream carries it;
- stream.py: the sealed intake stream in Redis, and the one script that admits and appends;
- drain.py: the drain task's service, reading the stream and recording each entry;
- record.py: signup_record, the pending subscriber and the `requested` consent event;
- confirm.py: signup_confirm, what the inbox owner's confirmation applies;
- emails.py: when the confirmation and welcome emails go (mail/transactional.py builds them).

Nothing a person asks for on a form takes effect until the inbox owner confirms: a new
address becomes active, and an active address gains topics (or a corrected name), only
through the link mailed to it. Every path does the same visible thing, so the page never
reveals whether an address was new, pending, active or gone. Why a stream:
docs/adr/0002-signup-intake-stream.md.
"""
