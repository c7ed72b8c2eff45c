"""Who a staff action is recorded against."""

from django.contrib.auth.models import AnonymousUser, User

# What a view hands a service as the person acting (`request.user`), or None when no
# one is (a task, the shell).
Actor = User | AnonymousUser | None


def recorded_actor(actor: Actor) -> User | None:
    """The user an audit row or a draft names: an anonymous or unsaved one is nobody."""
    return actor if isinstance(actor, User) and actor.pk else None
