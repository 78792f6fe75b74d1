"""Sources: one module per kind of business data, each reading its raw layouts into the
canonical interactions / items / users tables (see recflow.sources.base).

A source module provides LAYOUTS, layout_named(), detect(location) -> Detected,
cleaners(layout, settings) -> {table: TableCleaner}, generate_sample(target, settings), and
optionally derive(clean tables) -> tables built from the clean ones (an e-commerce log has no
catalogue: items come from events) and DOWNLOADABLE names with download(name, target_root).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from recflow.config import Settings
from recflow.sources.base import SourceError


@dataclass(frozen=True)
class SourceInfo:
    module: str
    explicit: bool  # ratings (a rating model and RMSE make sense) or implicit events


SOURCES = {
    "movielens": SourceInfo("recflow.sources.movielens", explicit=True),
    "ecommerce": SourceInfo("recflow.sources.ecommerce", explicit=False),
    "tv": SourceInfo("recflow.sources.tv", explicit=False),
}


def source_module(name: str) -> ModuleType:
    return importlib.import_module(SOURCES[name].module)


def derived_tables(settings: Settings, clean: dict) -> dict:
    derive = getattr(source_module(settings.source), "derive", None)
    return derive(clean) if derive else {}


def resolve_source_path(settings: Settings) -> Path:
    """What to ingest: the user's folder or file, a downloaded public set, or the generated sample."""
    module = source_module(settings.source)
    if settings.path is None:
        target = settings.sample_dir
        if not (target / "_SUCCESS").exists():
            module.generate_sample(target, settings)
            (target / "_SUCCESS").touch()
        return target
    downloadable = getattr(module, "DOWNLOADABLE", ())
    # Checked before anything is opened: a path outside the input folders is refused without
    # a word about whether it exists.
    try:
        candidate = settings.input_path(settings.path)
    except ValueError as error:
        if settings.path in downloadable:
            return module.download(settings.path, settings.data_dir / "downloads")
        raise SourceError(str(error)) from None
    if candidate.exists():
        return candidate
    if settings.path in downloadable:
        return module.download(settings.path, settings.data_dir / "downloads")
    if downloadable:
        raise SourceError(
            f"path {settings.path!r} is neither a folder nor a {module.TITLE} name ({', '.join(downloadable)})"
        )
    raise SourceError(f"{settings.source} path {settings.path!r} does not exist")
