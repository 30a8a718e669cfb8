"""rediss:// against a real TLS redis-server: CA verification, client certificates, host names."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qts_data.errors import BackendError, Failure
from qts_data.testing.servers import RedisProcess, RedisProcessFactory, find_free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

OpenClient = Callable[..., Any]
#: A TLS handshake is CPU work: give it room on a loaded CI machine (100 ms suits plain TCP).
ROOM = {"connect_timeout_ms": 1000, "socket_timeout_ms": 1000}


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate (EC keys), and a second CA."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command to make certificates")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    # The extensions Python 3.13's strict verification (VERIFY_X509_STRICT) insists on.
    ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *key, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                "-days", "2", "-subj", f"/CN=qts-test-{ca}", *ca_ext, cwd=folder)  # fmt: skip
    leaf = "authorityKeyIdentifier=keyid,issuer\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    (folder / "server.ext").write_text(
        leaf + "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    (folder / "client.ext").write_text(leaf + "extendedKeyUsage=clientAuth\n")
    for name, ext in (
        ("server", ["-extfile", "server.ext"]),
        ("client", ["-extfile", "client.ext"]),
    ):
        openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN=qts-test-{name}", cwd=folder)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *ext, cwd=folder)  # fmt: skip
    return folder


@pytest.fixture
def tls_redis(
    redis_process_factory: RedisProcessFactory, tmp_path: Path
) -> tuple[RedisProcess, int, Path]:
    """A redis-server with a TLS port (client certificates required) besides its plain one."""
    certs = make_certificates(tmp_path)
    port = find_free_port()
    server = redis_process_factory(
        "--tls-port", str(port),
        "--tls-cert-file", str(certs / "server.crt"),
        "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"),
        "--tls-auth-clients", "yes",
    )  # fmt: skip
    return server, port, certs


async def test_rediss_with_a_ca_and_a_client_certificate(
    open_clients: OpenClient, tls_redis: tuple[RedisProcess, int, Path]
) -> None:
    _, port, certs = tls_redis
    client = await open_clients(
        url=f"rediss://127.0.0.1:{port}/0",
        ssl_ca_certs=str(certs / "ca.crt"),
        ssl_certfile=str(certs / "client.crt"),
        ssl_keyfile=str(certs / "client.key"),
        pool_min=2,
        **ROOM,
    )
    await client.hset("h", {"f": b"v"}, ttl_ms=10_000)
    assert await client.hgetall("h") == {"f": b"v"}
    status = await client.health_check()
    assert status.details["tls"] is True
    assert status.details["url"] == f"rediss://127.0.0.1:{port}/0"
    received: list[bytes | None] = []
    await client.subscribe("c", received.append)
    assert await client.publish("c", b"over tls") == 1


async def test_a_server_certificate_from_another_ca_is_refused(
    open_clients: OpenClient, tls_redis: tuple[RedisProcess, int, Path]
) -> None:
    _, port, certs = tls_redis
    with pytest.raises(BackendError) as caught:
        await open_clients(
            url=f"rediss://127.0.0.1:{port}/0",
            ssl_ca_certs=str(certs / "other-ca.crt"),
            ssl_certfile=str(certs / "client.crt"),
            ssl_keyfile=str(certs / "client.key"),
            **ROOM,
        )
    assert caught.value.failure is Failure.UNREACHABLE, caught.value
    assert caught.value.operation == "connect"
    assert caught.value.address == f"127.0.0.1:{port}"


async def test_without_verification_the_ca_is_not_needed(
    open_clients: OpenClient, tls_redis: tuple[RedisProcess, int, Path]
) -> None:
    _, port, certs = tls_redis
    client = await open_clients(
        url=f"rediss://127.0.0.1:{port}/0",
        ssl_cert_reqs="none",
        ssl_certfile=str(certs / "client.crt"),
        ssl_keyfile=str(certs / "client.key"),
        pool_min=1,
        **ROOM,
    )
    await client.set("k", b"v")
    assert await client.get("k") == b"v"


async def test_a_missing_client_certificate_is_a_backend_error(
    open_clients: OpenClient, tls_redis: tuple[RedisProcess, int, Path]
) -> None:
    _, port, certs = tls_redis
    # With TLS 1.3 the server checks the client certificate after the handshake: the
    # connection's first exchange (part of open()) fails.
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}"):
        await open_clients(
            url=f"rediss://127.0.0.1:{port}/0",
            ssl_ca_certs=str(certs / "ca.crt"),
            pool_min=1,
            **ROOM,
        )
