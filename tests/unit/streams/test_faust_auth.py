"""faust's client gets the same credentials as the confluent clients, for every protocol."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import faust
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from dealstream.broker.settings import KafkaSettings
from dealstream.streams.faust_auth import broker_credentials


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed certificate (also its own CA) and its key, the key encrypted."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dealstream-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pw"),
        )
    )
    return cert_file, cert_file, key_file


def test_plaintext_needs_no_credentials() -> None:
    assert broker_credentials(KafkaSettings()) is None


def test_sasl_plaintext_carries_user_password_and_mechanism() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=SecretStr("pw-faust"),
    )
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("svc", "pw-faust")
    assert credentials.mechanism.value == "SCRAM-SHA-512" and credentials.ssl_context is None
    assert "pw-faust" not in repr(credentials)


def test_incomplete_sasl_settings_say_what_to_set() -> None:
    with pytest.raises(ValueError, match="SASL_USERNAME"):
        broker_credentials(KafkaSettings(security_protocol="SASL_SSL"))


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_tls_protocols_load_ca_certificate_and_encrypted_key(
    tls_files: tuple[Path, Path, Path], protocol: str
) -> None:
    ca, cert, key = tls_files
    kafka = KafkaSettings.model_validate(
        {
            "security_protocol": protocol,
            "sasl_mechanism": "PLAIN",
            "sasl_username": "svc",
            "sasl_password": "pw",
            "ssl_ca_location": str(ca),
            "ssl_certificate_location": str(cert),
            "ssl_key_location": str(key),
            "ssl_key_password": "key-pw",
        }
    )
    credentials = broker_credentials(kafka)
    expected = faust.SSLCredentials if protocol == "SSL" else faust.SASLCredentials
    assert isinstance(credentials, expected)
    context = credentials.context if protocol == "SSL" else credentials.ssl_context  # type: ignore[union-attr]
    assert isinstance(context, ssl.SSLContext)
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "dealstream-test"),),)


def test_a_wrong_key_password_fails_at_startup(tls_files: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls_files
    kafka = KafkaSettings(
        security_protocol="SSL",
        ssl_ca_location=str(ca),
        ssl_certificate_location=str(cert),
        ssl_key_location=str(key),
        ssl_key_password=SecretStr("wrong"),
    )
    with pytest.raises(ssl.SSLError):
        broker_credentials(kafka)
