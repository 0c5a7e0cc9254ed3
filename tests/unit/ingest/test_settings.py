import pytest

from services.ingest.settings import IngestSettings
from services.runtime.settings import Environment, SettingsError, load_settings


def test_the_expanded_batch_limit_may_not_be_below_the_request_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETAIN_ENV", Environment.LOCAL.value)
    defaults = load_settings(IngestSettings)
    assert (defaults.max_request_bytes, defaults.max_expanded_batch_bytes) == (512_000, 2_048_000)
    monkeypatch.setenv("RETAIN_MAX_EXPANDED_BATCH_BYTES", "100000")
    with pytest.raises(SettingsError, match="RETAIN_MAX_EXPANDED_BATCH_BYTES"):
        load_settings(IngestSettings)
