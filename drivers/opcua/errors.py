"""OPC UA specific errors and the translation of asyncua exceptions into the driver error tree."""

from __future__ import annotations

import asyncio

from asyncua import ua

from drivers.errors import ConnectError, DeviceTimeout, DriverError, ProtocolError


class OpcUaSecurityError(ConnectError):
    """The secure channel or session was refused: certificate untrusted/invalid, policy rejected."""


class OpcUaAuthError(ConnectError):
    """The server refused the user identity (wrong username or password, anonymous not allowed)."""


_S = ua.StatusCodes
_SECURITY_CODES = frozenset({
    _S.BadCertificateInvalid, _S.BadCertificateUntrusted, _S.BadCertificateTimeInvalid,
    _S.BadCertificateUriInvalid, _S.BadCertificateUseNotAllowed, _S.BadCertificateRevoked,
    _S.BadCertificateHostNameInvalid, _S.BadCertificateIssuerRevocationUnknown,
    _S.BadCertificateRevocationUnknown, _S.BadSecurityChecksFailed, _S.BadSecurityPolicyRejected,
    _S.BadSecurityModeRejected, _S.BadNonceInvalid, _S.BadApplicationSignatureInvalid,
})
_AUTH_CODES = frozenset({
    _S.BadUserAccessDenied, _S.BadIdentityTokenInvalid, _S.BadIdentityTokenRejected,
    _S.BadUserSignatureInvalid,
})


def status_name(code: int) -> str:
    """The symbolic name of a status code, e.g. BadNodeIdUnknown."""
    return ua.status_codes.get_name_and_doc(code)[0]


def translate(err: BaseException, doing: str) -> DriverError:
    """Map an exception raised by asyncua while `doing` something to our error tree."""
    if isinstance(err, DriverError):
        return err
    if isinstance(err, ua.UaStatusCodeError):
        code = int(err.code)
        message = f"{doing}: {status_name(code)}"
        if code in _SECURITY_CODES:
            return OpcUaSecurityError(message)
        if code in _AUTH_CODES:
            return OpcUaAuthError(message)
        if code == _S.BadTimeout:
            return DeviceTimeout(message)
        return ProtocolError(message, code=code)
    if isinstance(err, TimeoutError | asyncio.TimeoutError):
        return DeviceTimeout(f"{doing}: no answer in time")
    if isinstance(err, ConnectionError | OSError | EOFError):
        return ConnectError(f"{doing}: {err or type(err).__name__}")
    if isinstance(err, ua.UaError):
        text = str(err)
        if "No matching endpoints" in text or "certificate" in text.lower():
            return OpcUaSecurityError(f"{doing}: {text}")
        return ProtocolError(f"{doing}: {text}")
    return ConnectError(f"{doing}: {type(err).__name__}: {err}")
