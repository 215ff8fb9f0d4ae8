"""``python -m analytics``: run one analytics worker until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from analytics.service import AnalyticsService
from analytics.settings import AnalyticsSettings


def main() -> int:
    """Read ``MILLWATCH_ANALYTICS_*`` and the factories file, run until a signal."""
    settings = AnalyticsSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    factories = settings.factories()
    if not factories:
        logging.getLogger("analytics").error("event=no_factories hint=set factories_file")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with AnalyticsService(settings, factories):
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
