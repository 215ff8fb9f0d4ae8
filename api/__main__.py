"""``python -m api`` (``millwatch api``): serve the cluster API with uvicorn.

Settings come from ``MILLWATCH_API_*`` variables; the options below override them. With
``--seed-scenario`` the registry is first filled from a simulator scenario (only what is
missing), and with ``--demo-keys-file`` a registry without any API key gets one demo key
per role, written to that file (mode 0600): the local stack's first credentials.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import sqlalchemy as sa
import uvicorn

from api.app import create_app
from api.db import Database
from api.models import ApiKey
from api.seed import demo_keys, seed_from_scenario
from api.settings import ApiSettings

log = logging.getLogger("millwatch.api")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="millwatch api", description=__doc__)
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 8000)")
    parser.add_argument("--registry-url", help="SQLAlchemy URL of the registry")
    parser.add_argument("--influx-url", help="InfluxDB base URL")
    parser.add_argument("--seed-scenario", help="register a simulator scenario's assets first")
    parser.add_argument("--demo-keys-file", type=Path, help="issue demo keys into this file")
    return parser


def prepare_registry(
    database: Database, cluster: str, scenario: str | None, keys_file: Path | None
) -> None:
    """Create tables, seed the scenario, and issue demo keys when there are none yet."""
    database.create_all()
    with database.session() as session:
        if scenario:
            seed_from_scenario(session, scenario, cluster)
        if keys_file is None or session.scalar(sa.select(sa.func.count()).select_from(ApiKey)):
            return
        tokens = demo_keys(session)
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.writelines(f"{role} = {token!r}\n" for role, token in sorted(tokens.items()))
    log.info("event=demo_keys_issued file=%s roles=%s", keys_file, ",".join(sorted(tokens)))


def main(argv: list[str] | None = None) -> int:
    """Parse options, prepare the registry, serve until SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    overrides = {
        key: value
        for key, value in (
            ("host", args.host),
            ("port", args.port),
            ("registry_url", args.registry_url),
            ("influx_url", args.influx_url),
        )
        if value is not None
    }
    settings = ApiSettings(**overrides)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    database = Database(settings.registry_url)
    prepare_registry(database, settings.cluster, args.seed_scenario, args.demo_keys_file)
    app = create_app(settings, database=database)
    log.info("event=api_listening url=http://%s:%d", settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
