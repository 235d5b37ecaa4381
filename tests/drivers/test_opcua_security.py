"""OPC UA security end to end: Basic256Sha256 Sign / SignAndEncrypt, trust, username/password."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from drivers import ConnectionState, Signal
from drivers.opcua import (
    OpcUaAuthError,
    OpcUaDeviceConfig,
    OpcUaDriver,
    OpcUaSecurityError,
    OpcUaSession,
)
from simulators.opcua_plc import OpcUaPlc
from tests.servers import free_port

# One event loop for the module, so the secure PLC (slow to build) is shared by its tests.
pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

CLIENT_URI = "urn:mes-edge:opcua-client"
SERVER_URI = "urn:freeopcua:python:server"  # asyncua's default application URI
USERS = {"operator": "s3cret"}


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def make_cert(folder: Path, name: str, uri: str, usage: x509.ObjectIdentifier) -> KeyPair:
    """A self-signed OPC UA application certificate (DER) and its key (PEM)."""
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {"organizationName": "mes-edge tests"},
        [x509.UniformResourceIdentifier(uri), x509.DNSName(socket.gethostname())],
        extended=[usage], days=2)
    pair = KeyPair(folder / f"{name}.der", folder / f"{name}.pem")
    pair.cert.write_bytes(cert.public_bytes(Encoding.DER))
    pair.key.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return pair


@dataclass(frozen=True)
class Pki:
    server: KeyPair
    client: KeyPair
    stranger: KeyPair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    return Pki(
        server=make_cert(folder, "server", SERVER_URI, ExtendedKeyUsageOID.SERVER_AUTH),
        client=make_cert(folder, "client", CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH),
        stranger=make_cert(folder, "stranger", CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secure_plc(pki: Pki) -> AsyncIterator[OpcUaPlc]:
    """A PLC that only offers Basic256Sha256, trusts only `pki.client` and wants a password."""
    async with OpcUaPlc(
        port=free_port(), simulate=False,
        security=["Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"],
        certificate=pki.server.cert, private_key=pki.server.key,
        trusted_client_certs=[pki.client.cert], users=USERS,
    ) as sim:
        yield sim


def secure_device(plc: OpcUaPlc, pair: KeyPair, mode: str = "SignAndEncrypt",
                  **extra: Any) -> OpcUaDeviceConfig:
    raw: dict[str, Any] = {
        "name": "press", "endpoint": plc.endpoint, "timeout": 2.0, "connect_timeout": 5.0,
        "watchdog_interval": 1.0, "watchdog_timeout": 1.0, "reconnect_initial": 0.2,
        "reconnect_max": 1.0,
        "security": {"policy": "Basic256Sha256", "mode": mode, "certificate": str(pair.cert),
                     "private_key": str(pair.key), "application_uri": CLIENT_URI},
        "username": "operator", "password": USERS["operator"],
        "subscription": {"publishing_interval_ms": 50, "sampling_interval_ms": 0},
        "tags": [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}],
    }
    raw.update(extra)
    return OpcUaDeviceConfig.model_validate(raw)


async def first_values(drv: OpcUaDriver, want: int | None = None) -> Signal:
    """The next `good` signal (with value `want` when given)."""
    async with asyncio.timeout(10):
        async for batch in drv:
            for sig in batch:
                if sig.tag == "good" and (want is None or sig.value == want):
                    return sig
    raise AssertionError("unreachable")


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_secure_channel_with_trusted_cert_and_password_delivers_values(
    secure_plc: OpcUaPlc, pki: Pki, mode: str
) -> None:
    async with OpcUaDriver(secure_device(secure_plc, pki.client, mode)) as drv:
        first = await first_values(drv)
        # The PLC is shared by the module's tests: count on from whatever it shows now.
        await secure_plc.set_counter("GoodCount", first.value + 1)
        sig = await first_values(drv, want=first.value + 1)
        assert sig.device == "press"
        # The session really runs on the secure channel we asked for.
        policy = drv_policy(drv)
        assert policy == ("http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256", mode)


def drv_policy(drv: OpcUaDriver) -> tuple[str, str]:
    """Policy URI and mode of the live session, read through the simulator-independent client."""
    session = drv._session  # introspection of the live session
    assert session is not None
    sp = session.client.security_policy
    return sp.URI, sp.Mode.name


async def test_untrusted_client_certificate_is_a_typed_security_error(
    secure_plc: OpcUaPlc, pki: Pki
) -> None:
    cfg = secure_device(secure_plc, pki.stranger)
    session = OpcUaSession(cfg, on_lost=lambda exc: None)
    with pytest.raises(OpcUaSecurityError, match="BadCertificateUntrusted"):
        await session.open()
    await session.close()
    # The driver keeps retrying with backoff and shows why in its health.
    async with OpcUaDriver(cfg) as drv:
        async with asyncio.timeout(5):
            while drv.last_exception is None:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.05)
        assert isinstance(drv.last_exception, OpcUaSecurityError)
        assert drv.health.state == ConnectionState.DISCONNECTED
        assert "BadCertificateUntrusted" in (drv.health.last_error or "")


async def test_wrong_password_is_a_typed_auth_error(secure_plc: OpcUaPlc, pki: Pki) -> None:
    session = OpcUaSession(secure_device(secure_plc, pki.client, password="wrong"), lambda e: None)
    with pytest.raises(OpcUaAuthError, match="BadUserAccessDenied"):
        await session.open()
    await session.close()


async def test_anonymous_is_refused_when_users_are_configured(
    secure_plc: OpcUaPlc, pki: Pki
) -> None:
    cfg = secure_device(secure_plc, pki.client, username=None, password=None)
    session = OpcUaSession(cfg, lambda e: None)
    with pytest.raises(OpcUaAuthError):
        await session.open()
    await session.close()


async def test_username_password_without_channel_security() -> None:
    async with OpcUaPlc(port=free_port(), simulate=False, users=USERS) as plc:
        raw = {"name": "press", "endpoint": plc.endpoint, "username": "operator",
               "password": USERS["operator"],
               "subscription": {"publishing_interval_ms": 50, "sampling_interval_ms": 0},
               "tags": [{"name": "good", "node": "ns=2;s=Machine.GoodCount"}]}
        async with OpcUaDriver(OpcUaDeviceConfig.model_validate(raw)) as drv:
            await first_values(drv)
        bad = OpcUaSession(OpcUaDeviceConfig.model_validate({**raw, "password": "nope"}),
                           lambda e: None)
        with pytest.raises(OpcUaAuthError):
            await bad.open()
        await bad.close()


async def test_missing_key_file_is_a_clear_error(secure_plc: OpcUaPlc, pki: Pki,
                                                 tmp_path: Path) -> None:
    cfg = secure_device(secure_plc, KeyPair(pki.client.cert, tmp_path / "nope.pem"))
    session = OpcUaSession(cfg, lambda e: None)
    with pytest.raises(OpcUaSecurityError, match=r"nope\.pem"):
        await session.open()
    await session.close()
