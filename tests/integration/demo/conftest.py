"""The demo and the operator commands run against the real ingest, profile and scoring: the
scoring tests' fixtures serve here too."""

from tests.integration.profile.conftest import (  # noqa: F401 (fixtures)
    ingest,
    profile,
    storefront,
    write_key,
)
from tests.integration.scoring.conftest import scoring  # noqa: F401 (a fixture)
