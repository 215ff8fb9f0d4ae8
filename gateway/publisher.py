"""Publish outbox rows over MQTT 5 at QoS 1 and delete each row on its PUBACK.

How the pieces meet (paho-mqtt 2.x, verified in ``paho/mqtt/client.py``):

* ``loop_start`` runs paho's network thread, which reconnects by itself with the
  capped backoff of ``reconnect_delay_set`` (``loop_forever(retry_first_connection=True)``).
* A pump thread hands rows to ``client.publish`` in id order while fewer than
  ``max_unacked`` are unacknowledged. Paho keeps every QoS-1 message it accepted in
  its session until the PUBACK and, on reconnecting *in the same process*, re-sends
  them itself (``_messages_reconnect_reset_out``), so the pump never re-hands them;
  after a reconnect it waits until those re-sends are acked before handing new rows,
  which keeps the order on the wire. At process start the pump begins at the first
  row of the outbox: everything not acked before a restart or a crash is replayed.
* A PUBACK with reason 0x10 "no matching subscribers" means nobody would receive the
  row: no ingest worker has subscribed yet, or Mosquitto 2.0 restarted (it restores a
  persistent session's queue but not its *shared* subscriptions, until the worker
  re-subscribes; measured on 2.0.11). The broker discarded the message, so the row is
  kept and re-handed like a refused one: data waits in the outbox, never in the void.
* ``on_publish`` runs on the network thread while paho holds its message lock, so it
  only queues ``(mid, reason code)``; the pump maps mids to rows, deletes acked rows
  and re-hands rows the broker refused (PUBACK reason code >= 0x80) after a delay.
  Keeping the mid map on one thread also removes the race of a PUBACK arriving
  before ``publish()`` has returned the mid.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from gateway.errors import OutboxStorageError
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox, OutboxRow
from gateway.settings import GatewaySettings
from millwatch.contract import encode_metrics, encode_status, gateway_topic
from millwatch.mqttauth import configure_client, is_login_refused

log = logging.getLogger(__name__)

RECONNECT_MIN_DELAY_S = 0.2
RECONNECT_MAX_DELAY_S = 10
KEEPALIVE_S = 30
#: Delay before re-handing a row the broker refused, so a broker at quota is not hammered.
RETRY_DELAY_S = 1.0
#: Mosquitto's count of messages it stores (queued for sessions, retained, in flight).
BROKER_STORE_TOPIC = "$SYS/broker/store/messages/count"
#: MQTT 5 PUBACK reason 0x10: the broker accepted the message but no subscription matched.
NO_MATCHING_SUBSCRIBERS = 0x10
#: PUBACK reasons worth a retry: nobody subscribed yet, broker busy or at quota. Any other
#: failure (not authorized 0x87, topic invalid 0x90, payload invalid 0x99…) repeats forever,
#: so that row is dropped, logged at error level and counted instead of blocking the pump.
TRANSIENT_REFUSALS = frozenset({NO_MATCHING_SUBSCRIBERS, 0x80, 0x83, 0x97})
_PUMP_IDLE_S = 0.2
_PUMP_ERROR_PAUSE_S = 1.0
#: Rows per DELETE transaction: a full disk still has room for a small one.
_DELETE_CHUNK = 500


class _Client(Protocol):
    """The part of ``paho.mqtt.client.Client`` the publisher uses (fakes implement it)."""

    on_connect: Any
    on_disconnect: Any
    on_publish: Any

    def will_set(self, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...
    def reconnect_delay_set(self, min_delay: float, max_delay: float) -> None: ...
    def max_inflight_messages_set(self, inflight: int) -> None: ...
    def max_queued_messages_set(self, queue_size: int) -> Any: ...
    def connect_async(self, host: str, port: int, keepalive: int) -> None: ...
    def loop_start(self) -> Any: ...
    def loop_stop(self) -> Any: ...
    def disconnect(self) -> Any: ...
    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> mqtt.MQTTMessageInfo: ...


ClientFactory = Callable[[str], _Client]


def paho_client(client_id: str) -> _Client:
    """The real client: paho 2.x callbacks (VERSION2), MQTT 5."""
    return mqtt.Client(  # type: ignore[return-value]
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )


class Publisher:
    """Drain the outbox to the broker; see the module docstring for the threading model.

    Parameters
    ----------
    settings
        Broker address, ``max_unacked`` and this gateway's ids.
    outbox
        Source of rows; acked rows are deleted from it.
    metrics
        Counters updated as messages are handed, acked or refused.
    client_factory
        Builds the MQTT client from a client id; tests pass a fake.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        outbox: Outbox,
        metrics: GatewayMetrics,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.settings, self.outbox, self.metrics = settings, outbox, metrics
        self.max_unacked = settings.max_unacked
        self.status_topic = gateway_topic(settings.address, "status")
        self.metrics_topic = gateway_topic(settings.address, "metrics")
        self.published_total = 0
        self.acked_total = 0
        self.publish_errors_total = 0
        self._acks: deque[tuple[int, ReasonCode]] = deque()
        self._inflight: dict[int, OutboxRow] = {}  # mid -> row; pump thread only
        self._barrier: set[int] = set()  # mids paho re-sends after a reconnect
        self._retry: deque[tuple[float, OutboxRow]] = deque()
        self._undeleted: list[int] = []  # done with, but the disk refused the delete
        self._refusal_logged: dict[int, float] = {}  # reason code -> last log time
        self.broker_backlog: int | None = None  # messages the broker stores, when watched
        self._cursor = 0  # id of the last row handed to paho
        self._connected = threading.Event()
        self._reconnected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._draining = False
        self._pump: threading.Thread | None = None
        self.client = (client_factory or paho_client)(settings.client_id)
        self._configure(self.client)

    @property
    def connected(self) -> bool:
        """Whether the broker accepted our CONNECT and the link is up."""
        return self._connected.is_set()

    @property
    def in_flight(self) -> int:
        """Rows handed to the client and not yet acked (or waiting to be re-handed)."""
        return len(self._inflight) + len(self._retry)

    def start(self) -> None:
        """Connect in the background and start the network and pump threads."""
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, KEEPALIVE_S)
        self.client.loop_start()
        self._pump = threading.Thread(target=self._run_pump, name="gateway-pump", daemon=True)
        self._pump.start()

    def wake(self) -> None:
        """Tell the pump that new rows are in the outbox."""
        self._wake.set()

    def pump_once(self) -> None:
        """One pump round: apply the acks received, then hand rows while there is room.

        The pump thread calls this; unit tests call it directly instead of starting it.
        """
        self._apply_acks()
        # Read ``connected`` first: _on_connect sets ``reconnected`` before it.
        connected = self._connected.is_set()
        if self._reconnected.is_set():
            self._reconnected.clear()
            self._barrier = set(self._inflight)
        if connected and not self._draining and not self._barrier:
            self._hand_rows()
        self.metrics.in_flight.set(self.in_flight)
        self.metrics.outbox_depth.set(self.outbox.depth())

    def publish_metrics(self, counters: dict[str, float]) -> bool:
        """Publish a self-metrics snapshot at QoS 0 (ephemeral, never outboxed)."""
        if not self.connected:
            return False
        return self._publish_direct(self.metrics_topic, encode_metrics(counters), 0) is not None

    def stop(self, timeout: float = 10.0) -> None:
        """Wait up to ``timeout`` s for in-flight acks, mark the gateway offline, disconnect.

        Rows still unacked stay in the outbox and are replayed by the next process.
        """
        deadline = time.monotonic() + timeout
        self._draining = True
        self._wake.set()
        while (
            self._inflight and self.connected and time.monotonic() < deadline and self._pump_alive()
        ):
            time.sleep(0.02)
        if self.connected:  # else the broker already published our last will
            info = self._publish_direct(self.status_topic, encode_status(False), 1, retain=True)
            if info is not None:
                _wait_published(info, max(0.1, min(2.0, deadline - time.monotonic())))
        self._stopping.set()
        self._wake.set()
        if self._pump is not None:
            self._pump.join()
        self._apply_acks()
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()
        self.metrics.connected.set(0)
        self.metrics.in_flight.set(self.in_flight)
        self.metrics.outbox_depth.set(self.outbox.depth())
        log.info(
            "event=publisher_stopped in_flight=%d outbox_depth=%d acked_total=%d",
            self.in_flight,
            self.outbox.depth(),
            self.acked_total,
        )

    def _configure(self, client: _Client) -> None:
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        s = self.settings
        configure_client(client, s.mqtt_username, s.mqtt_password, s.mqtt_tls_ca_file)
        if self.settings.broker_backlog_limit is not None:
            client.on_message = self._on_broker_store
        client.will_set(self.status_topic, encode_status(False), qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        # The pump bounds what is in flight. A paho limit of 0 (none) also skips paho's
        # _update_inflight, which scans every unacked message on every PUBACK while
        # below its limit: O(max_unacked) per ack, measured 2x slower at 5000.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)  # unbounded (paho 2.2's setter stores nothing)

    def _pump_alive(self) -> bool:
        return self._pump is not None and self._pump.is_alive()

    def _run_pump(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(_PUMP_IDLE_S)
            self._wake.clear()
            try:
                self.pump_once()
            except Exception:  # e.g. disk full: keep the gateway alive, retry later
                log.exception("event=pump_error")
                self._count_error("pump_exception")
                self._stopping.wait(_PUMP_ERROR_PAUSE_S)

    def _apply_acks(self) -> None:
        done: list[int] = []
        refused: list[int] = []
        while self._acks:
            mid, reason = self._acks.popleft()
            row = self._inflight.pop(mid, None)
            self._barrier.discard(mid)
            if row is None:  # status or metrics message
                continue
            if reason.is_failure or reason.value == NO_MATCHING_SUBSCRIBERS:
                self._count_error(f"puback_{_label(reason)}")
                if reason.value in TRANSIENT_REFUSALS:
                    self._log_refusal(row, reason)
                    self._retry.append((time.monotonic() + RETRY_DELAY_S, row))
                else:
                    log.error("event=puback_refused_for_good id=%d reason=%r", row.id, str(reason))
                    self.metrics.outbox_dropped.labels(policy="refused").inc()
                    refused.append(row.id)
            else:
                done.append(row.id)
        if done or refused or self._undeleted:
            self._delete(done + refused)
        if done:
            self.acked_total += len(done)
            self.metrics.messages_acked.inc(len(done))

    def _delete(self, ids: list[int]) -> None:
        """Delete rows that are done with, in chunks; keep what the disk refuses for later.

        The rows stay in the outbox meanwhile but behind the cursor, so they are not
        published again by this process (a restart would resend them: harmless, since
        writes are idempotent).
        """
        ids = self._undeleted + ids
        for start in range(0, len(ids), _DELETE_CHUNK):  # small enough for a full disk
            try:
                self.outbox.delete(ids[start : start + _DELETE_CHUNK])
            except OutboxStorageError as exc:
                if not self._undeleted:
                    log.error("event=outbox_delete_failed rows=%d error=%r", len(ids), str(exc))
                self._count_error("outbox_delete_failed")
                self._undeleted = ids[start:]
                return
        self._undeleted = []

    def _log_refusal(self, row: OutboxRow, reason: ReasonCode) -> None:
        # One line per reason and second at most: a missing subscriber refuses every row.
        now = time.monotonic()
        if self._refusal_logged.get(reason.value, 0.0) + 1.0 <= now:
            self._refusal_logged[reason.value] = now
            log.warning("event=puback_refused id=%d reason=%r", row.id, str(reason))

    def _hand_rows(self) -> None:
        now = time.monotonic()
        while self._retry and self._retry[0][0] <= now:
            if not self._publish(self._retry[0][1]):
                return
            self._retry.popleft()
        room = self.max_unacked - self.in_flight
        if room <= 0:
            return
        for row in self.outbox.read(self._cursor, room):
            if not self._publish(row):
                return
            self._cursor = row.id

    def _publish(self, row: OutboxRow) -> bool:
        """Hand one row to paho; False means paho kept nothing and the row must wait."""
        try:
            info = self.client.publish(row.topic, row.payload, row.qos, row.retain)
        except ValueError as exc:  # bad topic or oversize payload: no retry can fix it
            log.error("event=publish_refused id=%d topic=%r error=%r", row.id, row.topic, str(exc))
            self._count_error("invalid")
            self.metrics.outbox_dropped.labels(policy="invalid").inc()
            self._delete([row.id])
            return True
        rc = mqtt.MQTTErrorCode(info.rc)
        if rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            # Paho's queue is full or the mid is still in use: nothing was stored.
            self._count_error(rc.name)
            return False
        if rc != mqtt.MQTT_ERR_SUCCESS:
            # Any other code (MQTT_ERR_NO_CONN: not connected) comes after paho stored the
            # QoS-1 message in its session; it is sent when the connection is back.
            self._count_error(rc.name)
        self._inflight[info.mid] = row
        self.published_total += 1
        self.metrics.messages_published.inc()
        return True

    def _publish_direct(
        self, topic: str, payload: bytes, qos: int, retain: bool = False
    ) -> mqtt.MQTTMessageInfo | None:
        """Publish a status or metrics message (not outboxed); None if paho refused it."""
        try:
            info = self.client.publish(topic, payload, qos, retain)
        except ValueError as exc:
            log.error("event=publish_refused topic=%r error=%r", topic, str(exc))
            self._count_error("invalid")
            return None
        rc = mqtt.MQTTErrorCode(info.rc)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self._count_error(rc.name)
        # QoS 0 is only sent on a live link; QoS 1 is stored by paho unless QUEUE_SIZE.
        if rc == mqtt.MQTT_ERR_QUEUE_SIZE or (qos == 0 and rc != mqtt.MQTT_ERR_SUCCESS):
            return None
        return info

    def _count_error(self, label: str) -> None:
        self.publish_errors_total += 1
        self.metrics.publish_errors.labels(rc=label).inc()

    # paho callbacks: network thread, paho's locks held; keep them short.

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            # paho reconnects with its capped backoff; the outbox keeps every row meanwhile.
            self.metrics.connect_refused.labels(reason=_label(reason)).inc()
            level = logging.ERROR if is_login_refused(reason) else logging.WARNING
            log.log(
                level,
                "event=mqtt_connect_refused reason=%r user=%r broker=%s:%d",
                str(reason),
                self.settings.mqtt_username,
                self.settings.mqtt_host,
                self.settings.mqtt_port,
            )
            return
        self._publish_direct(self.status_topic, encode_status(True), 1, retain=True)
        if self.settings.broker_backlog_limit is not None:
            client.subscribe(BROKER_STORE_TOPIC, qos=0)
        self._reconnected.set()
        self._connected.set()
        self.metrics.connected.set(1)
        log.info(
            "event=mqtt_connected broker=%s:%d in_flight=%d",
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            self.in_flight,
        )
        self._wake.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self._connected.clear()
        self.metrics.connected.set(0)
        if not self._stopping.is_set():
            log.warning(
                "event=mqtt_disconnected reason=%r in_flight=%d", str(reason), self.in_flight
            )

    def _on_broker_store(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self.broker_backlog = int(message.payload)
        except ValueError:
            log.warning("event=broker_store_unreadable payload=%r", message.payload[:40])

    def _on_publish(
        self, client: Any, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        self._acks.append((mid, reason))
        self._wake.set()


def _label(reason: ReasonCode) -> str:
    """A reason code as a metric label: ``not_authorized``."""
    return reason.getName().replace(" ", "_").lower()


def _wait_published(info: mqtt.MQTTMessageInfo, timeout: float) -> None:
    try:
        info.wait_for_publish(timeout)
    except (ValueError, RuntimeError) as exc:  # refused or connection lost meanwhile
        log.warning("event=status_not_published error=%r", str(exc))
