"""The upstream layer over real sockets: any HTTP method and body; gRPC over TLS, with metadata."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import wrappers_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.launcher import find_free_ports
from switchyard.deadline import Deadline
from switchyard.upstream import (
    CallScope,
    GrpcRequest,
    RestRequest,
    Upstream,
    UpstreamRejected,
    UpstreamSettings,
    UpstreamUnavailable,
)


def scope() -> CallScope:
    """A request's scope, its deadline starting now."""
    return CallScope(deadline=Deadline.after(10.0), headers={"x-request-id": "r-1"})


async def echo(request: Request) -> JSONResponse:
    if request.query_params.get("status"):
        return JSONResponse({"error": "no"}, int(request.query_params["status"]))
    answer = JSONResponse(
        {
            "method": request.method,
            "contentType": request.headers.get("content-type"),
            "body": (await request.body()).decode(),
            "requestId": request.headers.get("x-request-id"),
            "token": request.headers.get("x-service-token"),
        }
    )
    answer.set_cookie("session", "from-the-upstream")
    return answer


async def query(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "query": request.url.query,
            "params": dict(request.query_params),
            "cookie": request.headers.get("cookie"),
        }
    )


@pytest.fixture(scope="module")
async def echo_service() -> AsyncIterator[str]:
    (port,) = find_free_ports(1)
    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST", "PUT", "PATCH"]),
            Route("/query", query),
        ]
    )
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture(params=["aiohttp", "httpcore"])
def http_transport(request: pytest.FixtureRequest) -> str:
    """Every REST test runs over both pools httpx can sit on."""
    return str(request.param)


@pytest.fixture
def rest_upstream(http_transport: str) -> Callable[[str], Upstream]:
    def make(address: str) -> Upstream:
        settings = UpstreamSettings.model_validate(
            {
                "kind": "rest",
                "instances": [address],
                "headers": {"X-Service-Token": "s3cret"},
                "http_transport": http_transport,
                "max_connections": 4,
                "keepalive_expiry": 2.5,
            }
        )
        return Upstream.from_settings("echo", settings)

    return make


RestUpstream = Callable[[str], Upstream]


async def test_a_rest_call_sends_any_method_with_a_json_body(
    echo_service: str, rest_upstream: RestUpstream
) -> None:
    upstream = rest_upstream(echo_service)
    try:
        answer = await upstream.call(
            RestRequest("/echo", method="PATCH", json={"rating": 5}), scope()
        )
    finally:
        await upstream.aclose()
    assert answer == {
        "method": "PATCH",
        "contentType": "application/json",
        "body": '{"rating":5}',
        "requestId": "r-1",
        "token": "s3cret",
    }


async def test_a_rest_call_sends_a_form_body(
    echo_service: str, rest_upstream: RestUpstream
) -> None:
    upstream = rest_upstream(echo_service)
    try:
        answer = await upstream.call(
            RestRequest("/echo", method="POST", form={"a": "1", "b": "x y"}), scope()
        )
    finally:
        await upstream.aclose()
    assert (answer["contentType"], answer["body"]) == (
        "application/x-www-form-urlencoded",
        "a=1&b=x+y",
    )


async def test_a_rejected_write_is_not_an_outage(
    echo_service: str, rest_upstream: RestUpstream
) -> None:
    upstream = rest_upstream(echo_service)
    try:
        with pytest.raises(UpstreamRejected):
            await upstream.call(RestRequest("/echo", {"status": "409"}, method="PUT"), scope())
    finally:
        await upstream.aclose()
    assert RestRequest("/echo", method="PUT").idempotent
    assert not RestRequest("/echo", method="POST").idempotent


async def test_parameters_are_encoded_and_no_cookie_is_kept(
    echo_service: str, rest_upstream: RestUpstream
) -> None:
    upstream = rest_upstream(echo_service)
    try:
        await upstream.call(RestRequest("/echo"), scope())  # answers with a Set-Cookie
        answers = [
            await upstream.call(RestRequest("/query", params), scope())
            for params in ({"ids": "1,2"}, {"q": "a b&c=d", "ids": "1,2"}, {"ids": "1,2"}, {})
        ]
    finally:
        await upstream.aclose()
    assert [answer["params"] for answer in answers] == [
        {"ids": "1,2"},
        {"q": "a b&c=d", "ids": "1,2"},
        {"ids": "1,2"},
        {},
    ]
    assert answers[0]["query"] == "ids=1,2"
    assert {answer["cookie"] for answer in answers} == {None}


async def test_a_connection_closed_without_an_answer_is_unavailable_not_a_timeout(
    rest_upstream: RestUpstream,
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    upstream = rest_upstream(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(UpstreamUnavailable):
            await upstream.call(RestRequest("/users"), scope())
        assert not await upstream.check(1.0)
    finally:
        await upstream.aclose()
        server.close()
        await server.wait_closed()


async def test_many_calls_share_a_small_pool(
    echo_service: str, rest_upstream: RestUpstream
) -> None:
    upstream = rest_upstream(echo_service)  # max_connections = 4
    try:
        answers = await asyncio.gather(
            *(upstream.call(RestRequest("/query", {"n": str(n)}), scope()) for n in range(40))
        )
        assert await upstream.check(1.0)
    finally:
        await upstream.aclose()
    assert [answer["params"]["n"] for answer in answers] == [str(n) for n in range(40)]


def certificate_pair(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 it signed: (ca, certificate, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer_key: Any, key: Any, issuer: str, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("test-ca", ca_key, ca_key, "test-ca", ca=True)
    server = build("127.0.0.1", ca_key, server_key, "test-ca", ca=False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def echo_metadata(
    request: wrappers_pb2.StringValue, context: grpc.aio.ServicerContext[Any, Any]
) -> wrappers_pb2.StringValue:
    metadata = {key: value for key, value in context.invocation_metadata() or ()}
    return wrappers_pb2.StringValue(value=orjson.dumps([request.value, metadata]).decode())


async def test_a_grpc_call_goes_over_tls_with_static_scope_and_call_metadata(
    tmp_path: Path,
) -> None:
    ca, certificate, key = certificate_pair(tmp_path)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Echo",
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(
                        echo_metadata,
                        request_deserializer=wrappers_pb2.StringValue.FromString,
                        response_serializer=wrappers_pb2.StringValue.SerializeToString,
                    )
                },
            )
        ]
    )
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), certificate.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    settings = UpstreamSettings.model_validate(
        {
            "kind": "grpc",
            "instances": [f"127.0.0.1:{port}"],
            "tls": {"ca_file": str(ca)},
            "headers": {"X-Service-Token": "s3cret"},
        }
    )
    upstream = Upstream.from_settings("echo", settings)
    try:
        answer = await upstream.call(
            GrpcRequest(
                "/test.Echo/Echo",
                wrappers_pb2.StringValue(value="hi"),
                wrappers_pb2.StringValue,
                metadata={"x-tenant": "blue"},
            ),
            scope(),
        )
    finally:
        await upstream.aclose()
        await server.stop(None)
    value, metadata = orjson.loads(answer.value)
    assert value == "hi"
    assert metadata["x-service-token"] == "s3cret"
    assert metadata["x-request-id"] == "r-1"
    assert metadata["x-tenant"] == "blue"
