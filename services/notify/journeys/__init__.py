"""The journeys notify ships: one file per journey, the file named after the journey's id.

`load()` reads a directory of journey files (these by default) into a validated `Catalog`; a
bad file fails the load with every problem named (file, field). The language: docs/journeys.md.
"""

from pathlib import Path

from services.notify.domain.catalog import SUFFIXES, Catalog, load_catalog

DIRECTORY = Path(__file__).resolve().parent


def load(directory: Path = DIRECTORY) -> Catalog:
    files = sorted(
        path for path in directory.iterdir() if path.is_file() and path.suffix.lower() in SUFFIXES
    )
    return load_catalog((path.name, path.read_text(encoding="utf-8")) for path in files)
