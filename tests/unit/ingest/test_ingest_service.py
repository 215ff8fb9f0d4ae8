import time

import orjson

from ingest import Ingest, IngestSettings
from ingest.consumer import Consumer
from ingest.outputs import MemoryOutput
from millwatch import contract


def test_ingest_runs_end_to_end_on_fakes(fake_clients):
    output = MemoryOutput()
    settings = IngestSettings(flush_interval_s=0.01, internal_interval_s=0.05)
    with Ingest(settings, output=output, client_factory=fake_clients) as ingest:
        (client,) = fake_clients.created
        assert client.loop_running
        client.connect(session_present=False)
        assert ingest.wait_ready(1)
        ts = contract.now_ms()
        payload = orjson.dumps(
            {"v": 1, "seq": 1, "type": "knit_circular", "ts": [ts], "m": {"speed_rpm": [30.5]}}
        )
        client.deliver("mw/v1/c1/f9/knit1/k1/telemetry", payload)
        deadline = time.monotonic() + 5
        while not (client.acks and output.lines.get(contract.INTERNAL_DATABASE)):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert ingest.metrics.snapshot()["lines_written_knit_total"] == 1
    assert client.disconnected and not client.loop_running
    assert output.closed
    assert output.lines["f_f9"] == [
        f"knit,cluster=c1,factory=f9,hall=knit1,machine=k1,type=knit_circular "
        f"seq=1i,speed_rpm=30.5 {ts * 1_000_000}"
    ]


def test_stop_without_start_is_safe():
    ingest = Ingest(IngestSettings(), output=MemoryOutput())
    assert isinstance(ingest.consumer, Consumer)
    ingest.stop()
    ingest.stop()
