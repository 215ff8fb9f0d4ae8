"""``python -m ingest``: run one worker until SIGINT/SIGTERM (settings from env).

``--env-file`` names a file of ``MILLWATCH_INGEST_*=value`` lines read under the
environment (which wins): the place for the broker password, readable by the service only.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from ingest.errors import IngestError
from ingest.service import run
from ingest.settings import IngestSettings


def main(argv: list[str] | None = None) -> int:
    """Configure logging, read ``MILLWATCH_INGEST_*``, run until a signal."""
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("--env-file", help="file of MILLWATCH_INGEST_* settings (e.g. secrets)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    settings = IngestSettings(_env_file=args.env_file)  # type: ignore[call-arg]
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
