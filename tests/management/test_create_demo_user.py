import re
from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from subscriptions.models import Membership, Permission
from tests.support.factories import CampaignFactory
from tests.support.staff import totp_code

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_demo_user", *args, stdout=out)
    return out.getvalue()


def printed(name: str, output: str) -> str:
    return next(line.split(name, 1)[1].strip() for line in output.splitlines() if line.strip().startswith(name))


def printed_password(output: str) -> str:
    return printed("password", output)


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

    assert "https://tidings.test/staff/account/login/" in output
    assert "https://tidings.test/admin/" in output
    assert "demo" in output


def test_the_printed_totp_secret_and_uri_make_codes_the_sign_in_accepts(client):
    output = run()
    secret = printed("TOTP secret", output)

    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert printed("otpauth URI", output).startswith("otpauth://totp/")
    assert f"secret={secret}" in printed("otpauth URI", output)
    client.post(reverse("account_login"), {"login": "demo", "password": printed_password(output)})
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.url == reverse("staff:home")


def test_each_printed_recovery_code_signs_in_once(client):
    output = run()
    codes = printed("recovery codes", output).split()

    assert len(codes) == 10
    client.post(reverse("account_login"), {"login": "demo", "password": printed_password(output)})
    assert client.post(reverse("mfa_authenticate"), {"code": codes[0]}).url == reverse("staff:home")
    client.logout()
    client.post(reverse("account_login"), {"login": "demo", "password": printed_password(output)})
    assert client.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 200  # refused


def test_every_run_makes_a_fresh_secret_and_codes_and_the_old_ones_stop_working():
    first = run()
    second = run()

    assert printed("TOTP secret", first) != printed("TOTP secret", second)
    assert printed("recovery codes", first) != printed("recovery codes", second)
    user = get_user_model().objects.get(username="demo")
    assert Authenticator.objects.filter(user=user, type="totp").count() == 1
    assert Authenticator.objects.filter(user=user, type="recovery_codes").count() == 1


def test_it_makes_the_demo_a_member_of_every_campaign_with_every_permission():
    campaigns = [CampaignFactory(), CampaignFactory()]

    run()
    run()

    memberships = Membership.objects.filter(user__username="demo")
    assert sorted(m.campaign_id for m in memberships) == sorted(c.pk for c in campaigns)
    assert all(sorted(m.permissions) == sorted(Permission.values) for m in memberships)


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


def test_it_refuses_a_demo_password_that_breaks_the_rules(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo")

    with pytest.raises(CommandError, match="too short"):
        run()

    assert not get_user_model().objects.filter(username="demo").exists()


def test_it_refuses_when_debug_is_off(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        run()

    assert not get_user_model().objects.filter(username="demo").exists()


def test_it_runs_with_debug_off_when_forced(settings):
    settings.DEBUG = False

    output = run("--force")

    assert authenticate(username="demo", password=printed_password(output)) is not None
