"""``python -m gateway -c gateway.toml``: run one gateway until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from gateway.errors import ConfigError, GatewayError
from gateway.service import Gateway
from gateway.settings import GatewaySettings

log = logging.getLogger("gateway")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the settings and run; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="gateway TOML file")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    stop = threading.Event()
    try:
        settings = GatewaySettings.from_toml(args.config)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        Gateway(settings).run_until(stop)
    except ConfigError as exc:
        log.error("event=config_error error=%r", str(exc))
        return 2
    except GatewayError as exc:
        log.error("event=gateway_error error=%r", str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
