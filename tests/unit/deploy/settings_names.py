"""Every RETAIN_ variable each service reads, derived from its settings class."""

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.ingest.settings import IngestSettings
from services.notify.settings import NotifySettings
from services.profile.settings import ProfileSettings
from services.runtime.settings import ServiceSettings
from services.scoring.settings import ScoringSettings

SETTINGS: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings,
    "profile": ProfileSettings,
    "scoring": ScoringSettings,
    "notify": NotifySettings,
    "setup": ServiceSettings,
}


def variables(settings: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field name, as pydantic-settings reads them."""
    prefix = settings.model_config.get("env_prefix", "")
    names = {}
    for field, info in settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            for choice in alias.choices:
                names[str(choice).upper()] = field
        elif isinstance(alias, str):
            names[alias.upper()] = field
        else:
            names[f"{prefix}{field}".upper()] = field
    return names
