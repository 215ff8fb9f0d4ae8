from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.errors import ConfigError
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.settings import GatewaySettings

from .conftest import FakeMqttClient

SAMPLE = Path(__file__).resolve().parents[3] / "gateway" / "sample.toml"
REQUIRED = {"cluster": "c1", "factory": "f01", "gateway_id": "gw1", "outbox_path": "/tmp/o.sqlite"}


def test_sample_toml_loads_through_the_settings() -> None:
    s = GatewaySettings.from_toml(SAMPLE)
    assert (s.cluster, s.factory, s.gateway_id) == ("c1", "f01", "gw1")
    assert s.inputs == {"simulator": {"machines": {"loom_airjet": 20}}}
    assert s.client_id == "gw-c1-f01-gw1"


def test_sample_toml_documents_every_key_with_its_true_default() -> None:
    text = SAMPLE.read_text()
    commented = dict(
        tomllib.loads(m.group(1)).popitem()
        for m in re.finditer(r"^# (\w+ = .+)$", text, flags=re.MULTILINE)
    )
    settable = set(tomllib.loads(text)) | set(commented)
    assert settable == set(GatewaySettings.model_fields)
    fields = GatewaySettings.model_fields
    for key, value in commented.items():
        if fields[key].default is not None:  # None defaults show an example instead
            assert fields[key].default == value, key
    for block in re.split(r"\n\n+", text):
        lines = block.splitlines()
        if any(not line.startswith("##") for line in lines):
            assert lines[0].startswith("##"), f"undocumented: {block!r}"


def test_environment_beats_the_file_and_keywords_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        'cluster = "c1"\nfactory = "f01"\ngateway_id = "gw1"\noutbox_path = "o.sqlite"\n'
        "mqtt_port = 1111\nmax_unacked = 10\nsamples_per_message = 5\n"
    )
    monkeypatch.setenv("MILLWATCH_GATEWAY_MQTT_PORT", "2222")
    monkeypatch.setenv("MILLWATCH_GATEWAY_MAX_UNACKED", "20")
    monkeypatch.setenv(
        "MILLWATCH_GATEWAY_INPUTS", '{"simulator": {"machines": {"loom_airjet": 3}}}'
    )
    s = GatewaySettings.from_toml(path, max_unacked=30)
    assert (s.mqtt_port, s.max_unacked, s.samples_per_message) == (2222, 30, 5)
    assert s.inputs == {"simulator": {"machines": {"loom_airjet": 3}}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('gateway_id = "GW 1"', "gateway_id"),
        ("colour = 3", "colour"),  # typos are errors, not silently ignored
        ("max_unacked = 0", "max_unacked"),
        ("max_unacked = 70000", "max_unacked"),
        ("outbox_max_messages = 10", "max_unacked must not exceed"),
        ('outbox_full_policy = "drop_newest"', "outbox_full_policy"),
        ("samples_per_message = 0", "samples_per_message"),
        ("this is not toml", "gw.toml"),
    ],
)
def test_bad_files_raise_config_error_naming_the_file(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "gw.toml"
    base = {k: v for k, v in REQUIRED.items() if not body.startswith(k)}
    path.write_text("".join(f'{k} = "{v}"\n' for k, v in base.items()) + body + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        GatewaySettings.from_toml(path)
    assert str(path) in str(info.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        GatewaySettings.from_toml(tmp_path / "nope.toml")


def test_broker_login_comes_from_the_file_or_env_and_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gw.toml"
    body = "".join(f'{k} = "{v}"\n' for k, v in REQUIRED.items())
    path.write_text(body + 'mqtt_username = "f01.gw1"\nmqtt_password = "from-file"\n')
    settings = GatewaySettings.from_toml(path)
    assert settings.mqtt_username == "f01.gw1"
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "from-file"
    assert "from-file" not in repr(settings)
    monkeypatch.setenv("MILLWATCH_GATEWAY_MQTT_PASSWORD", "from-env")
    assert GatewaySettings.from_toml(path).mqtt_password.get_secret_value() == "from-env"  # type: ignore[union-attr]
    path.write_text(body + 'mqtt_password = "alone"\n')
    with pytest.raises(ConfigError, match="mqtt_password needs mqtt_username"):
        GatewaySettings.from_toml(path)


def test_a_refused_login_is_logged_as_an_error_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = GatewaySettings(**REQUIRED, mqtt_username="f01.gw1", mqtt_password="pw-123")
    logins: list[tuple[str, str]] = []

    class Client(FakeMqttClient):
        def username_pw_set(self, user: str, password: str) -> None:
            logins.append((user, password))

    metrics = GatewayMetrics()
    outbox = Outbox(tmp_path / "outbox.sqlite", 10)
    try:
        publisher = Publisher(settings, outbox, metrics, Client)
        assert logins == [("f01.gw1", "pw-123")]
        refused = ReasonCode(PacketTypes.CONNACK, identifier=0x86)
        publisher.client.on_connect(publisher.client, None, None, refused, None)
    finally:
        outbox.close()
    assert not publisher.connected
    assert metrics.snapshot()["connect_refused_total"] == 1
    (record,) = [r for r in caplog.records if "mqtt_connect_refused" in r.getMessage()]
    assert record.levelname == "ERROR"
    assert "pw-123" not in caplog.text
