import os
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from services.runtime.settings import SettingsError, load_settings
from services.scoring.domain.schedule import RefitSchedule
from services.scoring.domain.standing import StandingRules
from services.scoring.domain.upgrades import UpgradeRules
from services.scoring.settings import ScoringSettings

NOW = datetime(2026, 12, 2, 8, 30, tzinfo=UTC)


def test_an_interval_schedule_runs_one_interval_from_now() -> None:
    schedule = RefitSchedule(every=timedelta(hours=6))
    assert schedule.next_after(NOW) == NOW + timedelta(hours=6)


def test_a_time_of_day_runs_today_when_still_ahead_else_tomorrow() -> None:
    assert RefitSchedule(at=time(9, 0)).next_after(NOW) == datetime(2026, 12, 2, 9, tzinfo=UTC)
    assert RefitSchedule(at=time(2, 0)).next_after(NOW) == datetime(2026, 12, 3, 2, tzinfo=UTC)


def test_a_refit_that_ends_at_its_own_time_waits_a_whole_day() -> None:
    at_the_time = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    schedule = RefitSchedule(at=time(2, 0))
    assert schedule.next_after(at_the_time) == at_the_time + timedelta(days=1)


def test_a_time_of_day_is_read_in_utc_whatever_the_clock_zone() -> None:
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert RefitSchedule(at=time(9, 0)).next_after(tokyo) == datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("RETAIN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RETAIN_ENV", "local")
    return monkeypatch


def test_the_default_settings_are_the_documented_rules(local: pytest.MonkeyPatch) -> None:
    settings = load_settings(ScoringSettings)
    assert settings.standing_rules() == StandingRules()
    assert settings.refit_at is None
    assert settings.refit_settings().upgrades == UpgradeRules()


def test_every_standing_rule_is_read_from_the_environment(local: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TIER_TOP_SHARE": "0.1",
        "TIER_POTENTIAL_RATIO": "2.5",
        "LADDER_ALIVE_THRESHOLD": "0.6",
        "LADDER_GOOD_RATING": "4.5",
        "LADDER_AFFILIATE_TRAIT": "partner_program",
        "STAGE_LAPSED_THRESHOLD": "0.2",
        "STAGE_SILENT_INTERVALS": "4",
        "STAGE_ONE_TIME_SILENCE_DAYS": "365",
        "STAGE_ACQUISITION_DAYS": "30",
        "CHURN_MEDIUM_THRESHOLD": "0.4",
        "CHURN_HIGH_THRESHOLD": "0.8",
        "REFIT_AT": "02:30",
        "UPGRADE_PRICE_RATIO": "1.5",
        "UPGRADES_PER_CUSTOMER": "3",
    }.items():
        local.setenv(f"RETAIN_{name}", value)
    settings = load_settings(ScoringSettings)
    assert settings.standing_rules() == StandingRules(
        top_share=0.1,
        potential_ratio=Decimal("2.5"),
        alive_threshold=0.6,
        good_rating=4.5,
        affiliate_trait="partner_program",
        lapsed_threshold=0.2,
        silent_intervals=4.0,
        one_time_silence_days=365,
        acquisition_days=30,
        churn_medium=0.4,
        churn_high=0.8,
    )
    assert settings.refit_at == time(2, 30)
    assert settings.refit_settings().upgrades == UpgradeRules(Decimal("1.5"), 3)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "RETAIN_TIER_TOP_SHARE",
            "1.5",
            "RETAIN_TIER_TOP_SHARE: Input should be less than or equal to 1",
        ),
        (
            "RETAIN_STAGE_ACQUISITION_DAYS",
            "0",
            "RETAIN_STAGE_ACQUISITION_DAYS: Input should be greater than or equal to 1",
        ),
        ("RETAIN_REFIT_AT", "25:00", "RETAIN_REFIT_AT"),
        ("RETAIN_CHURN_MEDIUM_THRESHOLD", "0.9", "must not be above RETAIN_CHURN_HIGH_THRESHOLD"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_variable(
    local: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    local.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(ScoringSettings)
