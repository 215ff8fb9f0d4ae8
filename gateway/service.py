"""One gateway process: inputs, outbox, publisher and agent wired together.

Example
-------
::

    settings = GatewaySettings.from_toml("gateway.toml")
    with Gateway(settings) as gw:      # start() on enter, stop() on exit
        gw.wait_idle(timeout=60)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TypeVar

from gateway import registry
from gateway.agent import Agent, Produced
from gateway.errors import ConfigError, GatewayError
from gateway.inputs.base import Input
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox
from gateway.publisher import ClientFactory, Publisher
from gateway.settings import GatewaySettings
from millwatch.contract import MachineAddress
from millwatch.lifecycle import Lifecycle

log = logging.getLogger(__name__)

_POLL_S = 0.02
_T = TypeVar("_T")


class Gateway(Lifecycle):
    """Build and run the parts of one gateway; threads only, :meth:`start` returns at once.

    Parameters
    ----------
    settings
        The whole configuration, including the ``inputs`` tables.
    inputs
        Ready input plugins instead of building them from ``settings.inputs`` (tests).
    client_factory
        MQTT client factory passed to :class:`~gateway.publisher.Publisher` (tests).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        inputs: Sequence[Input] | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self._given_inputs = inputs
        self._client_factory = client_factory
        self._stop = threading.Event()
        self._agent_thread: threading.Thread | None = None
        self._outbox: Outbox | None = None
        self._publisher: Publisher | None = None
        self._agent: Agent | None = None

    @property
    def outbox(self) -> Outbox:
        """The outbox (after :meth:`start`)."""
        return _started(self._outbox)

    @property
    def publisher(self) -> Publisher:
        """The publisher (after :meth:`start`)."""
        return _started(self._publisher)

    @property
    def agent(self) -> Agent:
        """The agent (after :meth:`start`)."""
        return _started(self._agent)

    @property
    def produced(self) -> dict[MachineAddress, Produced]:
        """Per machine: seqs consumed by this process, messages, samples, events, rejected."""
        return self._agent.produced() if self._agent else {}

    def start(self) -> None:
        """Validate the inputs, open the outbox, connect, start gathering.

        Raises
        ------
        ConfigError
            An unknown plugin or an invalid input table; nothing is left running.
        GatewayError
            The outbox is locked by another gateway or cannot be opened.
        """
        s = self.settings
        inputs = list(self._given_inputs) if self._given_inputs is not None else _build_inputs(s)
        self._outbox = Outbox(
            s.outbox_path, s.outbox_max_messages, s.outbox_full_policy, s.outbox_min_free_bytes
        )
        try:
            self._publisher = Publisher(s, self._outbox, self.metrics, self._client_factory)
            self._agent = Agent(s, inputs, self._outbox, self.metrics, self._publisher)
            if s.metrics_port:
                self.metrics.start_http_server(s.metrics_port, s.metrics_host)
        except BaseException:
            self._outbox.close()
            raise
        self._publisher.start()
        self._stop.clear()
        self._agent_thread = threading.Thread(
            target=self._agent.run, args=(self._stop,), name="gateway-agent", daemon=True
        )
        self._agent_thread.start()
        log.info(
            "event=gateway_started gateway=%s cluster=%s factory=%s broker=%s:%d inputs=%s "
            "outbox=%s replay=%d mode=%s",
            s.gateway_id,
            s.cluster,
            s.factory,
            s.mqtt_host,
            s.mqtt_port,
            ",".join(s.inputs) or "injected",
            s.outbox_path,
            self._outbox.depth(),
            "fast_forward" if s.fast_forward else "real_time",
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gathering, wait up to ``timeout`` s for acks, go offline, close the outbox.

        The agent flushes its partial batch first; rows still unacked stay in the
        outbox for the next start.
        """
        if self._agent_thread is None:
            return
        self._stop.set()
        self._agent_thread.join()
        self._agent_thread = None
        self.publisher.stop(timeout)
        self.metrics.stop_http_server()
        depth = self.outbox.depth()
        self.outbox.close()
        log.info(
            "event=gateway_stopped gateway=%s factory=%s ticks=%d outbox_depth=%d",
            self.settings.gateway_id,
            self.settings.factory,
            self.agent.ticks,
            depth,
        )

    def run_until(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set, or until ``max_ticks`` are done and delivered."""
        self.start()
        try:
            while not stop_event.wait(0.2):
                if self.agent.done.is_set() and self._idle():
                    break
        finally:
            self.stop()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the outbox is empty and nothing is in flight; True if it happened.

        With ``max_ticks`` set, idle also means the agent has finished its ticks, so a
        caller can start, ``wait_idle`` and then reconcile everything produced.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finished = self.settings.max_ticks is None or self.agent.done.is_set()
            if finished and self._idle():
                return True
            time.sleep(_POLL_S)
        return False

    def _idle(self) -> bool:
        return self.outbox.depth() == 0 and self.publisher.in_flight == 0


def _build_inputs(settings: GatewaySettings) -> list[Input]:
    """Instantiate and ``init()`` every configured plugin; config errors are fatal."""
    import gateway.inputs.all  # noqa: F401, PLC0415 - plugins register on import

    if not settings.inputs:
        raise ConfigError("no inputs configured: add an [inputs.<name>] table")
    built = []
    for name, table in settings.inputs.items():
        try:
            factory = registry.get(name)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from exc
        plugin = factory(settings.cluster, settings.factory, table)
        plugin.init()
        built.append(plugin)
    return built


def _started(part: _T | None) -> _T:
    if part is None:
        raise GatewayError("the gateway is not started")
    return part
