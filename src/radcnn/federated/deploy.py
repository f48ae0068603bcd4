"""The deployment engine's moving parts: TLS certificates, checks that fail early with a clear message (a port in
use, a certificate that does not verify), the Flower app folder ``flwr run`` submits, and the exact
``flower-superlink`` / ``flower-supernode`` / ``flwr run`` command lines (`radcnn federated superlink`, `join`
and `submit` run them; docs/federated.md shows them verbatim).

Certificates are made with `cryptography` (a CA, and a server certificate signed by it for the addresses the
SuperLink answers on); they are for a test or a first trial — a hospital deployment uses its own PKI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from radcnn.errors import ConfigError, FederatedError
from radcnn.io import write_text_atomic

APP_NAME = "radcnn-federated"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path


def generate_certificates(folder: str | Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                          days: int = 30) -> Certificates:  # fmt: skip
    """A new CA and a server certificate + key signed by it for `hosts` (IP addresses or DNS names)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "radcnn federated CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    result = Certificates(folder / "ca.crt", folder / "server.pem", folder / "server.key")
    write_text_atomic(result.ca, ca.public_bytes(pem).decode())
    write_text_atomic(result.server_cert, cert.public_bytes(pem).decode())
    write_text_atomic(
        result.server_key,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )
    result.server_key.chmod(0o600)
    return result


def _load_certificate(path: str | Path, what: str):
    from cryptography import x509

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a PEM certificate ({what}): {exc}") from None


def verify_certificate(ca_file: str | Path, cert_file: str | Path, *, host: str = "127.0.0.1") -> None:
    """Check that `cert_file` is signed by `ca_file`, is valid now and names `host`; FederatedError says which
    check failed. (The same checks a SuperNode's TLS handshake makes, done before any process starts.)"""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    ca = _load_certificate(ca_file, "CA certificate")
    cert = _load_certificate(cert_file, "server certificate")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise FederatedError(
            f"{cert_file}: the server certificate does not verify against the CA {ca_file} "
            f"(issuer {cert.issuer.rfc4514_string()!r}, CA {ca.subject.rfc4514_string()!r}: "
            f"{str(exc) or 'the CA key did not sign it'}); "
            "expected a certificate signed by that CA"
        ) from None
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise FederatedError(
            f"{cert_file}: the server certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now"
        )
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise FederatedError(f"{cert_file}: the server certificate has no subject alternative names") from None
    listed = [str(n) for n in names.get_values_for_type(x509.IPAddress)] + names.get_values_for_type(x509.DNSName)
    if host not in listed:
        raise FederatedError(f"{cert_file}: the server certificate is for {', '.join(listed)}, not {host}")


def check_port_free(host: str, port: int) -> None:
    """FederatedError when something already listens on host:port (before a process would fail obscurely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise FederatedError(
                f"port {port} on {host} is already in use ({exc.strerror}); stop what uses it or choose another port"
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _executable(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        from radcnn.errors import MissingExtraError

        raise MissingExtraError("flwr", "federated")
    return found


def superlink_command(
    certs: Certificates, *, host: str = "127.0.0.1", port: int = 9093, database: str = ""
) -> list[str]:
    """flower-superlink with TLS, serving Fleet, Control and ServerAppIo APIs on host:port."""
    command = [
        _executable("flower-superlink"),
        "--ssl-ca-certfile", str(certs.ca),
        "--ssl-certfile", str(certs.server_cert),
        "--ssl-keyfile", str(certs.server_key),
        "--host", host,
        "--port", str(port),
        "--disable-runtime-dependency-installation",
    ]  # fmt: skip
    if database:
        command += ["--database", database]
    return command


def supernode_command(ca: str | Path, superlink: str, *, partition_id: int | None = None, num_partitions: int = 0,
                      data_source: str = "", port: int = 9094, host: str = "127.0.0.1") -> list[str]:  # fmt: skip
    """flower-supernode that verifies the SuperLink with `ca` and says which data it trains on."""
    if (partition_id is None) == (not data_source):
        raise ConfigError("a SuperNode needs a partition (partition id + number of partitions) or its own data source")
    node = (
        f'data-source="{data_source}"'
        if data_source
        else f"partition-id={partition_id} num-partitions={num_partitions}"
    )
    return [
        _executable("flower-supernode"),
        "--root-certificates", str(ca),
        "--superlink", superlink,
        "--node-config", node,
        "--host", host,
        "--port", str(port),
    ]  # fmt: skip


def write_app_folder(folder: str | Path, settings: dict | None = None) -> Path:
    """The Flower app ``flwr run`` builds and submits: a pyproject.toml naming radcnn's ServerApp and ClientApp,
    with `settings` (FederatedConfig keys) as the app's run config. The code itself is the installed radcnn."""
    import tomli_w

    folder = Path(folder)
    config = {
        "project": {"name": APP_NAME, "version": "1.0.0", "dependencies": ["radcnn[federated]"]},
        "tool": {
            "flwr": {
                "app": {
                    "publisher": "radcnn",
                    "components": {
                        "serverapp": "radcnn.federated.server_app:app",
                        "clientapp": "radcnn.federated.client_app:app",
                    },
                    "config": dict(settings or {}),
                }
            }
        },
    }
    return write_text_atomic(folder / "pyproject.toml", tomli_w.dumps(config))


def write_connection(flwr_home: str | Path, address: str, ca: str | Path, name: str = "radcnn") -> Path:
    """The Flower CLI configuration (``$FLWR_HOME/config.toml``) naming the SuperLink `flwr run` submits to."""
    import tomli_w

    config = {"superlink": {"default": name, name: {"address": address, "root-certificates": str(Path(ca).resolve())}}}
    return write_text_atomic(Path(flwr_home) / "config.toml", tomli_w.dumps(config))


def probe_superlink(address: str, ca: str | Path, *, timeout: float = 10.0) -> None:
    """TLS handshake with the SuperLink at host:port, verifying its certificate against `ca` (what the SuperNode
    would do, but failing at once with a clear message instead of retrying for ever)."""
    import ssl

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--superlink {address!r}: expected host:port, e.g. 127.0.0.1:9093")
    _load_certificate(ca, "CA certificate")
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as sock,
            context.wrap_socket(sock, server_hostname=host),
        ):
            return
    except ssl.SSLCertVerificationError as exc:
        raise FederatedError(
            f"the SuperLink at {address} presented a certificate that does not verify against {ca}: "
            f"{exc.verify_message}; expected a certificate signed by that CA for {host}"
        ) from None
    except ssl.SSLError as exc:
        raise FederatedError(f"TLS with the SuperLink at {address} failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise FederatedError(f"no SuperLink answers at {address} ({exc.strerror or exc}); is it running?") from None


def flwr_run_command(app_folder: str | Path, connection: str = "radcnn") -> list[str]:
    return [_executable("flwr"), "run", str(app_folder), connection, "--stream"]
