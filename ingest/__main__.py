"""``python -m ingest``: run one worker until SIGINT/SIGTERM (settings from env)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from ingest.errors import IngestError
from ingest.service import run
from ingest.settings import IngestSettings


def main() -> int:
    """Configure logging, read ``MILLWATCH_INGEST_*``, run until a signal."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    settings = IngestSettings()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        run(settings, stop)
    except IngestError:
        logging.getLogger("ingest").exception("event=ingest_failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
