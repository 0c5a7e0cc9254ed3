"""The pure core of the notify service: journeys as data.

Nothing here performs I/O or imports a driver (reading the journey directory is
`services.notify.journeys.load`):

- `parse_journey(text, source)` / `load_catalog(files)` -> `Catalog` of validated journeys.
"""

from services.notify.domain.catalog import (
    Catalog,
    CatalogError,
    JourneyError,
    load_catalog,
    parse_journey,
)

__all__ = ["Catalog", "CatalogError", "JourneyError", "load_catalog", "parse_journey"]
