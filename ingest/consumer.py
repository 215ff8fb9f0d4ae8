"""The MQTT side of ingest: persistent session, bounded in-flight window, manual acks.

Delivery guarantee: at-least-once from the gateway to InfluxDB.

* The client connects with a fixed ``client_id``, ``clean_start=False`` and a
  ``SessionExpiryInterval``, so the broker keeps our subscriptions and every
  unacked QoS 1 message while ingest is down or restarting.
* ``manual_ack=True``: paho sends no PUBACK by itself. The writer calls
  :meth:`Consumer.settle` only after InfluxDB has stored the batch, so a crash
  at any point leaves the message unacked at the broker, which redelivers it.
* ``ReceiveMaximum`` caps the unacked messages the broker sends us. That is the
  backpressure: when InfluxDB is down the broker stops sending (and queues for
  us) instead of ingest buffering or dropping.

Reconnects. A PUBACK carries only a packet id (paho's ``mid``), which is
meaningful on the connection that delivered the message. After a reconnect the
broker resends every unacked message (same session) and numbers new deliveries
independently, so acking an old mid on the new connection could ack a different
message. Each delivery therefore records the connection *generation* it came
on, and :meth:`Consumer.settle` acks only deliveries of the live connection. The
acks of older ones are dropped; the broker redelivers those messages and the
rewrite is harmless because every write is idempotent (same series and
timestamp overwrite the same point).

Deliveries of an older connection are written all the same, never skipped: a
broker that crashed restores its last autosave, which may lack messages ingest
already holds, and then never resends them. Writing them costs an idempotent
rewrite at most.

Memory. While InfluxDB is down, each reconnect brings a fresh window of
redeliveries on top of the copies already queued. When :attr:`Consumer.queue`
holds more than ``2 * receive_maximum`` deliveries, the copies of the oldest
connections whose session the broker still holds are purged (it resends them,
as they were never acked), counted in ``redeliveries_purged_total``. Copies from
before a session loss are never purged: the broker no longer has them.

paho ``ack(mid, qos)`` only queues a PUBACK on the current socket (see paho's
``Client.ack``); it is called under :attr:`_lock`, which ``on_connect`` and
``on_disconnect`` also take, so no ack can slip onto a newer connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.inbox import Delivery, Inbox
from ingest.logs import kv
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from millwatch import contract
from millwatch.mqttauth import configure_client, is_login_refused

__all__ = ["CHANNELS", "DROPPED_TOPIC", "Consumer", "Delivery", "MqttClient", "paho_client"]

log = logging.getLogger(__name__)

#: Channels ingest subscribes to (machine channels, then the gateway one).
CHANNELS: Final = ("telemetry", "event", "fault_label", "metrics")
#: Mosquitto's count of messages it dropped (queues full); not a contract message.
DROPPED_TOPIC: Final = "$SYS/broker/publish/messages/dropped"
KEEPALIVE_S: Final = 30
#: Queued deliveries allowed per ``receive_maximum`` before old copies are purged.
QUEUE_WINDOWS: Final = 2


class MqttClient(Protocol):
    """The part of ``paho.mqtt.client.Client`` ingest uses (a fake in unit tests)."""

    on_connect: Any
    on_disconnect: Any
    on_message: Any
    on_subscribe: Any
    on_connect_fail: Any

    def connect_async(
        self, host: str, port: int, keepalive: int, *, clean_start: Any, properties: Any
    ) -> Any:
        """Connect once the network loop runs."""

    def loop_start(self) -> Any:
        """Start the network thread."""

    def loop_stop(self) -> Any:
        """Stop the network thread."""

    def disconnect(self) -> Any:
        """Send DISCONNECT after what is queued."""

    def subscribe(self, topic: Any) -> Any:
        """Subscribe to ``[(filter, qos), ...]``."""

    def publish(self, topic: str, payload: bytes, qos: int) -> Any:
        """Publish; returns an ``MQTTMessageInfo``."""

    def ack(self, mid: int, qos: int) -> Any:
        """Send the PUBACK of a delivery (``manual_ack=True``)."""

    def message_callback_add(self, sub: str, callback: Any) -> None:
        """Route messages matching ``sub`` to ``callback`` instead of ``on_message``."""


def paho_client(settings: IngestSettings) -> MqttClient:
    """Build the MQTT v5 client: fixed id, manual acks, capped reconnect backoff."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.reconnect_delay_set(min_delay=0.2, max_delay=10)  # type: ignore[arg-type]
    s = settings
    configure_client(client, s.mqtt_username, s.mqtt_password, s.mqtt_tls_ca_file)
    return client


class Consumer:
    """Receives messages into :attr:`queue` and acks them when told to.

    ``on_message`` only appends to the queue (the paho network thread must not
    block); the writer thread drains it. A ``None`` item marks the end of input
    after :meth:`stop_accepting`. Each delivery stays in ``unacked`` until it is
    settled, forgotten or purged, whatever the order.

    Parameters
    ----------
    settings
        Broker address, client id, share group, session and window sizes.
    metrics
        Gets the live ``unacked``/``ack_lag_seconds`` and the broker's dropped count.
    client_factory
        Builds the MQTT client; :func:`paho_client` unless a test injects a fake.
    """

    def __init__(
        self,
        settings: IngestSettings,
        metrics: IngestMetrics,
        client_factory: Callable[[IngestSettings], MqttClient] = paho_client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = Inbox()
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0
        self._session_generation = 0
        self._connected = False
        self._accepting = True
        self._closing = False
        #: Arrival time (monotonic) of each delivery not yet settled, by serial, oldest first.
        self._unsettled: dict[int, float] = {}
        self._serial = 0
        self._last_ns = 0
        self._purge_futile_at = 0  # generation at which nothing more could be purged
        #: Set while connected with every subscription granted.
        self.ready = threading.Event()
        self._client = client_factory(settings)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_connect_fail = self._on_connect_fail
        self._unreachable_logged = False
        self._client.message_callback_add(DROPPED_TOPIC, self._on_dropped)
        metrics.track_unacked(lambda: len(self._unsettled), self.ack_lag)

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up (CONNACK received, no loss since)."""
        return self._connected

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        s = self._settings
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = s.receive_maximum
        self._client.connect_async(
            s.mqtt_host, s.mqtt_port, keepalive=KEEPALIVE_S, clean_start=False, properties=props
        )
        self._client.loop_start()

    def stop_accepting(self) -> None:
        """Ignore further deliveries (left unacked for the broker to resend) and end the queue."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
        self.queue.put(None)

    def close(self) -> None:
        """Disconnect (after the queued acks are sent) and stop the network thread."""
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()

    def ack_lag(self) -> float:
        """Seconds since the oldest message not yet settled arrived (0 when none)."""
        with self._lock:
            oldest = next(iter(self._unsettled.values()), None)
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    def settle(self, deliveries: Iterable[Delivery]) -> int:
        """Ack, in order, the deliveries of the live connection; forget the rest.

        Older connections' deliveries get no ack: their mids died with their
        connection. Returns the number of PUBACKs sent.
        """
        acked = 0
        with self._lock:
            for delivery in deliveries:
                self._unsettled.pop(delivery.serial, None)
                live = self._connected and delivery.generation == self._generation
                if live and delivery.qos > 0:
                    self._client.ack(delivery.mid, delivery.qos)
                    acked += 1
        return acked

    def forget(self, deliveries: Iterable[Delivery]) -> None:
        """Drop deliveries without acking them: the broker will resend them."""
        with self._lock:
            for delivery in deliveries:
                self._unsettled.pop(delivery.serial, None)

    def publish(self, topic: str, payload: bytes) -> Any:
        """Publish at QoS 1 (dead letters); returns paho's ``MQTTMessageInfo``."""
        return self._client.publish(topic, payload, qos=1)

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            # paho reconnects with its capped backoff; nothing was received, nothing is lost.
            self._metrics.connect_refused.labels(reason=reason_code.getName()).inc()
            s = self._settings
            level = logging.ERROR if is_login_refused(reason_code) else logging.WARNING
            log.log(
                level,
                kv(
                    "mqtt_connect_refused",
                    reason=reason_code,
                    user=s.mqtt_username,
                    broker=f"{s.mqtt_host}:{s.mqtt_port}",
                ),
            )
            return
        self._unreachable_logged = False
        with self._lock:
            self._generation += 1
            self._connected = True
            if not flags.session_present:
                self._session_generation = self._generation
        group = self._settings.share_group
        topics = [(contract.subscription(channel, group), 1) for channel in CHANNELS]
        self._client.subscribe([*topics, (DROPPED_TOPIC, 0)])
        log.info(
            kv(
                "mqtt_connected",
                broker=f"{self._settings.mqtt_host}:{self._settings.mqtt_port}",
                session_present=bool(flags.session_present),
                generation=self._generation,
            )
        )

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        if not self._unreachable_logged:  # once per outage; paho keeps retrying
            self._unreachable_logged = True
            s = self._settings
            log.warning(kv("mqtt_unreachable", broker=f"{s.mqtt_host}:{s.mqtt_port}"))

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, reason_codes: list[Any], properties: Any
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error(kv("mqtt_subscribe_refused", reasons=",".join(refused)))
        else:
            self.ready.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.ready.clear()
        with self._lock:
            was_connected, self._connected = self._connected, False
        if was_connected:
            level = logging.INFO if self._closing else logging.WARNING
            log.log(level, kv("mqtt_disconnected", reason=reason_code, held=len(self._unsettled)))

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "<invalid utf-8>"  # parse_topic rejects it as bad_topic
        with self._lock:
            if not self._accepting:
                return
            now = self._clock()
            self._serial += 1
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            delivery = Delivery(
                message.mid,
                message.qos,
                topic,
                message.payload,
                now,
                self._last_ns,
                self._generation,
                self._serial,
            )
            self._unsettled[delivery.serial] = now
            self.queue.put(delivery)  # unbounded: never blocks
            if self.queue.qsize() > QUEUE_WINDOWS * self._settings.receive_maximum:
                self._purge_redeliveries()

    def _purge_redeliveries(self) -> None:
        """Drop queued copies the broker will resend, oldest connection first (under lock)."""
        if self._purge_futile_at == self._generation:
            return  # which copies the broker holds changes only on (re)connect
        limit = QUEUE_WINDOWS * self._settings.receive_maximum
        held = range(self._session_generation, self._generation)  # resent by the broker
        purged: list[Delivery] = []
        for generation in sorted(self.queue.generations()):
            if self.queue.qsize() <= limit:
                break
            if generation in held:
                purged += self.queue.remove(lambda d, g=generation: d.generation == g)
        if self.queue.qsize() > limit:
            self._purge_futile_at = self._generation
        if not purged:
            return
        for delivery in purged:
            del self._unsettled[delivery.serial]
        self._metrics.redeliveries_purged.inc(len(purged))
        log.info(
            kv(
                "redeliveries_purged",
                count=len(purged),
                generations=",".join(sorted({str(d.generation) for d in purged})),
                queued=self.queue.qsize(),
                limit=limit,
            )
        )

    def _on_dropped(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._metrics.broker_dropped.set(float(message.payload))
        except ValueError:
            log.debug(kv("sys_dropped_unparsable", payload=message.payload[:40]))
