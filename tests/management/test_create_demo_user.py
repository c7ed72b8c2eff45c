from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_demo_user", *args, stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    return next(line.split(None, 1)[1] for line in output.splitlines() if line.strip().startswith("password"))


@pytest.fixture(autouse=True)
def _debug_on(settings, monkeypatch):
    settings.DEBUG = True
    # The real hasher is slow on purpose; these tests hash a dozen times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)


def test_it_creates_a_staff_superuser_who_can_sign_in_with_the_printed_password():
    output = run()

    user = authenticate(username="demo", password=printed_password(output))
    assert user is not None
    assert user.is_staff
    assert user.is_superuser


def test_it_prints_where_to_sign_in(settings):
    settings.SITE_URL = "https://tidings.test"

    output = run()

    assert "https://tidings.test/admin/" in output
    assert "demo" in output


def test_it_resets_the_password_on_every_run_instead_of_making_another_user():
    first = printed_password(run())
    second = printed_password(run())

    assert first != second
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert authenticate(username="demo", password=first) is None
    assert authenticate(username="demo", password=second) is not None


def test_it_restores_staff_rights_someone_took_away():
    run()
    get_user_model().objects.filter(username="demo").update(is_staff=False, is_superuser=False, is_active=False)

    run()

    user = get_user_model().objects.get(username="demo")
    assert (user.is_staff, user.is_superuser, user.is_active) == (True, True, True)


def test_it_uses_demo_password_when_set(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "a fixed demo password")

    output = run()

    assert printed_password(output) == "a fixed demo password"
    assert authenticate(username="demo", password="a fixed demo password") is not None


def test_it_refuses_when_debug_is_off(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        run()

    assert not get_user_model().objects.filter(username="demo").exists()


def test_it_runs_with_debug_off_when_forced(settings):
    settings.DEBUG = False

    output = run("--force")

    assert authenticate(username="demo", password=printed_password(output)) is not None
