"""Checks made before any Flower process starts: certificates that do not verify, a port already in use."""

from __future__ import annotations

import socket

import pytest

from radcnn.errors import FederatedError
from radcnn.federated.deploy import check_port_free, generate_certificates, verify_certificate


def test_certificate_checks(tmp_path):
    made = generate_certificates(tmp_path / "a")
    verify_certificate(made.ca, made.server_cert, host="127.0.0.1")
    other = generate_certificates(tmp_path / "b")
    with pytest.raises(FederatedError, match="does not verify against the CA"):
        verify_certificate(other.ca, made.server_cert)
    with pytest.raises(FederatedError, match="is for 127.0.0.1, localhost, not 10.0.0.7"):
        verify_certificate(made.ca, made.server_cert, host="10.0.0.7")


def test_port_in_use_is_named(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(FederatedError, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port_free("127.0.0.1", port)
