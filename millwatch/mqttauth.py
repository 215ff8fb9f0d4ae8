"""Broker login and TLS for the MQTT clients of the gateway and ingest.

Both services take the same optional settings: ``mqtt_username`` with ``mqtt_password``
(a ``SecretStr``, never logged) and ``mqtt_tls_ca_file`` (the CA that signed the broker's
certificate; set it to connect to a TLS listener, whose port goes in ``mqtt_port``).
:func:`configure_client` applies them to a paho client before it connects.

A CONNACK that refuses the login (MQTT 5 reason 0x86 "Bad user name or password" or
0x87 "Not authorized") is not transient in the usual sense, but the services keep
retrying all the same: the operator may fix the broker's password file and reload it.
:func:`is_login_refused` tells those reasons apart so they are logged at error level.

Example
-------
>>> from paho.mqtt.packettypes import PacketTypes
>>> from paho.mqtt.reasoncodes import ReasonCode
>>> is_login_refused(ReasonCode(PacketTypes.CONNACK, identifier=0x86))
True
>>> is_login_refused(ReasonCode(PacketTypes.CONNACK, identifier=0x88))
False
>>> class Recorder:
...     def username_pw_set(self, username, password):
...         self.login = (username, password)
>>> client = Recorder()
>>> configure_client(client, "ingest", SecretStr("s3cret"), None)
>>> client.login
('ingest', 's3cret')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

__all__ = ["LOGIN_REFUSED", "configure_client", "is_login_refused"]

#: CONNACK reasons that mean the broker refused who we are, not that it is busy.
LOGIN_REFUSED: Final = frozenset({0x86, 0x87})


def configure_client(
    client: Any, username: str | None, password: SecretStr | None, tls_ca_file: Path | None
) -> None:
    """Set the login and TLS of a paho client; call before connecting.

    Nothing is set when ``username`` and ``tls_ca_file`` are None, so fakes need
    neither method then.
    """
    if username is not None:
        client.username_pw_set(username, password.get_secret_value() if password else None)
    if tls_ca_file is not None:
        client.tls_set(ca_certs=str(tls_ca_file))


def is_login_refused(reason: Any) -> bool:
    """Whether a CONNACK reason code refuses the login (0x86 or 0x87)."""
    return getattr(reason, "value", None) in LOGIN_REFUSED
