"""The dashboard's session cookie proves the admin token was known, without holding it; it
expires, and a rotated token ends every session."""

from datetime import UTC, datetime, timedelta

from services.scoring.dashboard.session import DashboardSessions

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
TOKEN = "an-admin-token-of-enough-length-0123456789"


def test_a_session_is_valid_until_it_expires() -> None:
    sessions = DashboardSessions(TOKEN, timedelta(hours=12))
    cookie = sessions.issue(NOW)
    assert TOKEN not in cookie
    assert sessions.valid(cookie, NOW + timedelta(hours=11, minutes=59))
    assert not sessions.valid(cookie, NOW + timedelta(hours=12))


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    sessions = DashboardSessions(TOKEN, timedelta(hours=12))
    cookie = sessions.issue(NOW)
    expires, _, signature = cookie.partition(".")
    later = f"{int(expires) + 86400}.{signature}"  # a longer life, signed for the shorter one
    assert not sessions.valid(later, NOW)
    assert not sessions.valid(cookie[:-1] + ("0" if cookie[-1] != "0" else "1"), NOW)
    for junk in ("", ".", "abc.def", "1.2.3", "9" * 40 + "." + signature, None):
        assert not sessions.valid(junk, NOW)
    rotated = DashboardSessions(TOKEN + "-rotated", timedelta(hours=12))
    assert not rotated.valid(cookie, NOW)


def test_a_cookie_with_characters_outside_ascii_is_refused_not_an_error() -> None:
    # A browser or a client may send any byte in a cookie; the server reads it as Latin-1.
    sessions = DashboardSessions(TOKEN, timedelta(hours=12))
    expires, _, signature = sessions.issue(NOW).partition(".")
    for junk in (f"{expires}.{signature[:-1]}\u00e9", f"\u00b2.{signature}", f"{expires}\u00b2.x"):
        assert not sessions.valid(junk, NOW)


def test_only_the_admin_token_matches_and_without_one_nothing_does() -> None:
    sessions = DashboardSessions(TOKEN, timedelta(hours=1))
    assert sessions.token_matches(TOKEN)
    assert not sessions.token_matches(TOKEN[:-1])
    assert not sessions.token_matches("")
    unset = DashboardSessions(None, timedelta(hours=1))
    assert not unset.token_matches("")
    assert not unset.valid("1.2", NOW)
