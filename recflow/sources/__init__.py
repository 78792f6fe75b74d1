"""Sources: one module per kind of business data, each reading its raw layouts into the
canonical interactions / items / users tables."""

from __future__ import annotations

from pathlib import Path

from recflow.config import Settings
from recflow.sources import movielens


def resolve_source_dir(settings: Settings) -> Path:
    """The folder to ingest: the user's path, a downloaded public set, or the generated sample."""
    if settings.path is None:
        from recflow.generate.movielens import generate_movielens

        target = settings.sample_dir
        if not (target / "_SUCCESS").exists():
            generate_movielens(
                target, n_users=settings.sample_users, n_items=settings.sample_items, seed=settings.seed
            )
            (target / "_SUCCESS").touch()
        return target
    candidate = Path(settings.path).expanduser()
    if candidate.is_dir():
        return candidate
    if settings.path in movielens.DOWNLOADABLE:
        return movielens.download(settings.path, settings.data_dir / "downloads")
    raise movielens.SourceError(
        f"path {settings.path!r} is neither a folder nor a MovieLens name "
        f"({', '.join(movielens.DOWNLOADABLE)})"
    )
