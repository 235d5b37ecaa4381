"""Issue 12: the API serves HTTPS when the plant gives a certificate and key; then it sends HSTS
and the tablet cookies are Secure. Plain HTTP to that port gets no answer from the API."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.api.test_security import serve
from tests.servers import free_port


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mes-edge test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "api.crt", folder / "api.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_https_with_hsts_and_secure_cookies(sqlite_url: str, tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    api = {"host": "127.0.0.1", "port": free_port(),
           "tls": {"cert_file": str(cert_file), "key_file": str(key_file)}}
    async with serve(sqlite_url, api=api) as (_, base, tokens):
        assert base.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert_file))
        async with httpx.AsyncClient(base_url=base, verify=trust, timeout=30) as c:
            r = await c.get("/healthz")
            assert r.status_code == 200
            assert r.headers["strict-transport-security"].startswith("max-age=")
            r = await c.post("/login", data={"token": tokens["supervisor"]},
                             headers={"Origin": base})
            assert r.status_code == 303
            cookies = r.headers.get_list("set-cookie")
            assert len(cookies) == 2 and all("Secure" in c for c in cookies), cookies
        plain = base.replace("https://", "http://")
        async with httpx.AsyncClient(base_url=plain, timeout=10) as c:
            try:
                r = await c.get("/healthz")
            except httpx.HTTPError:
                pass  # the TLS server drops the plain request
            else:
                assert r.status_code == 400  # or answers it as a bad (non-TLS) request
