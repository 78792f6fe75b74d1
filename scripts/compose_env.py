#!/usr/bin/env python3
"""Write a .env for docker-compose.yaml with every required secret freshly generated.

    scripts/compose_env.py                  # .env beside docker-compose.yaml
    scripts/compose_env.py --output PATH    # elsewhere; then: docker compose --env-file PATH ...

docker-compose.yaml gives no secret a default: it refuses to start until each required variable
is set (.env.example lists them all, with the optional ones). This writes them, random, into a
new file created with mode 600. It never overwrites: when the file exists it exits with status 1
and changes nothing, because a second set of passwords would not match the accounts the first
one created (the databases take them only when their volumes are first created).

Standard library only, so that the host's python3 runs it before any virtualenv exists. Every
value is drawn from the URL-safe base64 alphabet (A-Z a-z 0-9 - _, and = padding in the Fernet
key): such a value needs no quoting in a .env, has no `$` that Compose would interpolate, and
may go into the database URLs that compose builds from the passwords.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

COMPOSE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = COMPOSE_DIR / ".env"


def fernet_key() -> str:
    """What cryptography's Fernet.generate_key() returns: URL-safe base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def password() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, 192 bits


def secret() -> str:
    return secrets.token_urlsafe(48)  # 64 characters, 384 bits


# The required variables of docker-compose.yaml (tests/deploy checks that this is all of them),
# in the order they are written, each with what draws its value.
GENERATED: dict[str, tuple[Callable[[], str], str]] = {
    "_AIRFLOW_WWW_USER_PASSWORD": (password, "Airflow UI password of _AIRFLOW_WWW_USER_USERNAME (admin)"),
    "AIRFLOW__API_AUTH__JWT_SECRET": (secret, "signs the API's JWTs; shared by every Airflow component"),
    "AIRFLOW__API__SECRET_KEY": (secret, "the api-server's session secret"),
    "AIRFLOW__CORE__FERNET_KEY": (
        fernet_key,
        "encrypts connection passwords in the metadata DB; losing it loses them",
    ),
    "AIRFLOW_DB_PASSWORD": (password, "PostgreSQL account airflow (Airflow's metadata)"),
    "WAREHOUSE_ROOT_PASSWORD": (password, "MySQL root, inside the warehouse container only"),
    "WAREHOUSE_PASSWORD": (password, "MySQL account recflow, which the pipeline writes with"),
    "RECFLOW_BI_READER_PASSWORD": (password, "Tableau's read-only account bi_reader"),
}


def render() -> str:
    lines = [
        "# docker compose settings for RecFlow, written by scripts/compose_env.py. Secret: never",
        "# commit it (.gitignore and .dockerignore leave .env out). Every other variable keeps its",
        "# default; .env.example lists them all. The database passwords are taken when the volumes",
        "# are first created: changing them here later does not change the accounts",
        "# (docs/docker-compose.md says how to rotate them).",
        "",
    ]
    uid = getattr(os, "getuid", lambda: None)()
    if uid:  # root (0) and Windows (None) keep the images' default, 50000
        lines += [
            "# uid the Airflow and Spark containers run as: yours, so that what they write is yours",
            f"AIRFLOW_UID={uid}",
            "",
        ]
    for name, (draw, meaning) in GENERATED.items():
        lines += [f"# {meaning}", f"{name}={draw()}"]
    return "\n".join(lines) + "\n"


def write_new(path: Path, text: str) -> None:
    """Create ``path`` with mode 600 and write ``text``; FileExistsError if it exists (O_EXCL:
    no window in which another process's file could be replaced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    try:
        write_new(args.output, render())
    except FileExistsError:
        print(
            f"{args.output} exists: left as it is (its passwords are the ones the accounts have). "
            "Add any missing variable to it by hand (.env.example lists them), or write a new file "
            "elsewhere with --output and pass it to docker compose --env-file.",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {args.output} (mode 600): the Airflow UI login is admin / _AIRFLOW_WWW_USER_PASSWORD there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
