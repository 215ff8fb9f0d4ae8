import httpx
import pytest
from influxdb_client.rest import ApiException
from urllib3.exceptions import NewConnectionError

from ingest.errors import WriteError
from ingest.outputs import (
    InfluxDBv1Output,
    InfluxDBv2Output,
    MemoryOutput,
    Output,
    make_output,
)
from ingest.settings import IngestSettings


class InfluxV1:
    """A scripted InfluxDB 1.x behind httpx.MockTransport."""

    def __init__(self, *write_responses: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.write_responses = list(write_responses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        if self.write_responses:
            return self.write_responses.pop(0)
        return httpx.Response(204)

    def output(self) -> InfluxDBv1Output:
        return InfluxDBv1Output("http://influx", token="t0k", transport=httpx.MockTransport(self))


def test_v1_write_posts_line_protocol_with_ns_precision():
    server = InfluxV1()
    out = server.output()
    out.ensure_database("f_f-03")
    out.ensure_database("f_f-03")
    out.write("f_f-03", b"m v=1 1")
    create, write = server.requests
    assert create.url.path == "/query"
    assert b"q=CREATE+DATABASE+%22f_f-03%22" in create.content
    assert dict(write.url.params) == {"db": "f_f-03", "precision": "ns"}
    assert write.content == b"m v=1 1"
    assert write.headers["Authorization"] == "Token t0k"
    out.close()


@pytest.mark.parametrize(
    ("response", "retryable", "retry_after"),
    [
        (httpx.Response(400, json={"error": "partial write: field type conflict"}), False, None),
        (httpx.Response(413), False, None),
        (httpx.Response(500, json={"error": "timeout"}), True, None),
        (httpx.Response(503, headers={"Retry-After": "7"}), True, 7.0),
        (httpx.Response(429, headers={"Retry-After": "soon"}), True, None),
        (httpx.Response(401, json={"error": "authorization failed"}), True, None),
        (httpx.Response(404, json={"error": "database not found"}), True, None),
    ],
)
def test_v1_status_mapping(response, retryable, retry_after):
    out = InfluxV1(response).output()
    with pytest.raises(WriteError) as info:
        out.write("db", b"m v=1 1")
    assert info.value.retryable is retryable
    assert info.value.retry_after == retry_after
    assert f"HTTP {response.status_code}" in info.value.message


def test_v1_partial_write_message_quotes_the_server():
    out = InfluxV1(httpx.Response(400, json={"error": "partial write: x"})).output()
    with pytest.raises(WriteError, match="partial write: x"):
        out.write("db", b"m v=1 1")


def test_v1_connection_errors_are_retryable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    out = InfluxDBv1Output("http://influx", transport=httpx.MockTransport(refuse))
    for call in (lambda: out.ensure_database("db"), lambda: out.write("db", b"m v=1 1")):
        with pytest.raises(WriteError) as info:
            call()
        assert info.value.retryable


def test_v1_database_not_found_recreates_it():
    server = InfluxV1(httpx.Response(404, json={"error": "database not found"}))
    out = server.output()
    out.ensure_database("db")
    with pytest.raises(WriteError):
        out.write("db", b"m v=1 1")
    out.ensure_database("db")
    out.write("db", b"m v=1 1")
    assert [r.url.path for r in server.requests] == ["/query", "/write", "/query", "/write"]


def test_v1_refused_create_database_does_not_block_writes(caplog):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"error": "not supported"}]})
        return httpx.Response(204)

    out = InfluxDBv1Output("http://influx", transport=httpx.MockTransport(handler))
    out.ensure_database("db")
    out.write("db", b"m v=1 1")
    assert "create_database_refused" in caplog.text


class FakeBuckets:
    def __init__(self, existing=(), error=None):
        self.existing = set(existing)
        self.created = []
        self.error = error

    def find_bucket_by_name(self, name):
        if self.error:
            raise self.error
        return name if name in self.existing else None

    def create_bucket(self, bucket_name, org):
        self.created.append((bucket_name, org))


class FakeWriteApi:
    def __init__(self, error=None):
        self.error = error
        self.writes = []
        self.closed = False

    def write(self, bucket, org, record, write_precision):
        if self.error:
            raise self.error
        self.writes.append((bucket, org, record, write_precision))

    def close(self):
        self.closed = True


class FakeV2Client:
    def __init__(self, write_error=None, bucket_error=None, existing=()):
        self.write_api_ = FakeWriteApi(write_error)
        self.buckets = FakeBuckets(existing, bucket_error)
        self.closed = False

    def write_api(self, write_options):
        return self.write_api_

    def buckets_api(self):
        return self.buckets

    def close(self):
        self.closed = True


def test_v2_creates_missing_buckets_once_and_writes_ns():
    client = FakeV2Client(existing={"old"})
    out = InfluxDBv2Output("http://x", "tok", "mill", client=client)
    for db in ("old", "new", "new"):
        out.ensure_database(db)
    assert client.buckets.created == [("new", "mill")]
    out.write("new", b"m v=1 1")
    ((bucket, org, record, precision),) = client.write_api_.writes
    assert (bucket, org, record, precision) == ("new", "mill", b"m v=1 1", "ns")
    out.close()
    assert client.closed and client.write_api_.closed


def _api_exception(status, retry_after=None):
    exc = ApiException(status=status, reason="x")
    exc.retry_after = retry_after
    return exc


@pytest.mark.parametrize(
    ("error", "retryable", "retry_after"),
    [
        (_api_exception(400), False, None),
        (_api_exception(422), False, None),
        (_api_exception(503, "3"), True, 3.0),
        (_api_exception(429), True, None),
        (_api_exception(401), True, None),
        (NewConnectionError(None, "refused"), True, None),
        (OSError("reset"), True, None),
    ],
)
def test_v2_error_mapping(error, retryable, retry_after):
    out = InfluxDBv2Output("http://x", "tok", "mill", client=FakeV2Client(write_error=error))
    with pytest.raises(WriteError) as info:
        out.write("db", b"m v=1 1")
    assert (info.value.retryable, info.value.retry_after) == (retryable, retry_after)


def test_v2_bucket_lookup_errors_are_write_errors():
    client = FakeV2Client(bucket_error=NewConnectionError(None, "refused"))
    out = InfluxDBv2Output("http://x", "tok", "mill", client=client)
    with pytest.raises(WriteError) as info:
        out.ensure_database("db")
    assert info.value.retryable


def test_make_output_picks_the_api():
    v1 = make_output(IngestSettings(influx_api="v1"))
    assert isinstance(v1, InfluxDBv1Output)
    v1.close()
    v2 = make_output(IngestSettings(influx_api="v2", influx_token="t", influx_org="o"))
    assert isinstance(v2, InfluxDBv2Output)
    v2.close()


def test_outputs_satisfy_the_protocol():
    assert isinstance(MemoryOutput(), Output)
    v1 = InfluxDBv1Output("http://x")
    assert isinstance(v1, Output)
    v1.close()


def test_memory_output_refuses_unknown_databases():
    out = MemoryOutput()
    with pytest.raises(WriteError) as info:
        out.write("nope", b"m v=1 1")
    assert not info.value.retryable
