"""Keep a running Mosquitto's logins in step with the registry.

When the API is told where the broker keeps its files (``broker_dir``: ``passwd``,
``acl`` and the broker's ``mosquitto.pid``), every gateway login issued, rotated or revoked
through the API rewrites both files from the registry and reloads the broker (SIGHUP):
a revoked gateway is refused at once, not at the next restart. Service logins (ingest,
users without a ``factory.`` prefix) are not in the registry; their lines are kept.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from sqlalchemy.orm import Session

from api.mosquitto import registry_files
from millwatch.private_file import write_private

__all__ = ["sync_broker"]

log = logging.getLogger("millwatch.api")


def _service_lines(passwd: Path) -> list[str]:
    """Lines of users that are not gateways (gateway users are ``factory.gateway``)."""
    if not passwd.exists():
        return []
    lines = passwd.read_text().splitlines()
    return [line for line in lines if line and "." not in line.partition(":")[0]]


def sync_broker(session: Session, cluster: str, broker_dir: Path) -> bool:
    """Rewrite ``passwd`` and ``acl`` in ``broker_dir`` and reload the broker.

    Returns whether a running broker was signalled; problems are logged, not raised:
    the registry change stands, and the files are right for the broker's next start.
    """
    passwd, acl = broker_dir / "passwd", broker_dir / "acl"
    files = registry_files(session, cluster, _service_lines(passwd))
    write_private(passwd, files.passwd)
    write_private(acl, files.acl)
    try:
        pid = int((broker_dir / "mosquitto.pid").read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        log.error("event=broker_reload_failed dir=%s error=%s", broker_dir, exc)
        return False
    log.info("event=broker_reloaded dir=%s pid=%d", broker_dir, pid)
    return True
