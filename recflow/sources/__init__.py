"""Sources: one module per kind of business data, each reading its raw layouts into the
canonical interactions / items / users tables (see recflow.sources.base).

A source module provides LAYOUTS, layout_named(), detect(location) -> Detected,
cleaners(layout, settings) -> {table: TableCleaner}, and optionally derive(clean tables) ->
tables built from the clean ones (an e-commerce log has no catalogue: items come from events).
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
    event_types: tuple[str, ...]


SOURCES = {
    "movielens": SourceInfo("recflow.sources.movielens", explicit=True, event_types=("rating",)),
    "ecommerce": SourceInfo(
        "recflow.sources.ecommerce",
        explicit=False,
        event_types=("view", "cart", "remove_from_cart", "purchase"),
    ),
    "tv": SourceInfo("recflow.sources.tv", explicit=False, event_types=("watch",)),
}


def source_module(name: str) -> ModuleType:
    return importlib.import_module(SOURCES[name].module)


def derived_tables(settings: Settings, clean: dict) -> dict:
    derive = getattr(source_module(settings.source), "derive", None)
    return derive(clean) if derive else {}


def generate_sample(settings: Settings, target: Path) -> None:
    """Write the source's generated sample into `target` (deterministic in the settings)."""
    if settings.source == "movielens":
        from recflow.generate.movielens import generate_movielens

        generate_movielens(
            target, n_users=settings.sample_users, n_items=settings.sample_items, seed=settings.seed
        )
    elif settings.source == "ecommerce":
        from recflow.generate.ecommerce import generate_ecommerce

        generate_ecommerce(
            target, n_users=settings.sample_users, n_items=settings.sample_items, seed=settings.seed
        )
    else:
        from recflow.generate.tv import generate_tv

        generate_tv(
            target, n_households=settings.sample_users, n_channels=settings.sample_items, seed=settings.seed
        )


def resolve_source_path(settings: Settings) -> Path:
    """What to ingest: the user's folder or file, a downloaded public set, or the generated sample."""
    if settings.path is None:
        target = settings.sample_dir
        if not (target / "_SUCCESS").exists():
            generate_sample(settings, target)
            (target / "_SUCCESS").touch()
        return target
    candidate = Path(settings.path).expanduser()
    if candidate.exists():
        return candidate
    if settings.source == "movielens":
        from recflow.sources import movielens

        if settings.path in movielens.DOWNLOADABLE:
            return movielens.download(settings.path, settings.data_dir / "downloads")
        raise SourceError(
            f"path {settings.path!r} is neither a folder nor a MovieLens name "
            f"({', '.join(movielens.DOWNLOADABLE)})"
        )
    raise SourceError(f"{settings.source} path {settings.path!r} does not exist")
