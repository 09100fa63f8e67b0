"""Every Kafka client kopru builds carries the cluster's TLS and SASL settings."""

from __future__ import annotations

import ssl

from faststream.security import SASLScram512

from services.common.kafka.broker import _security
from services.common.kafka.clients import connection_kwargs
from services.common.settings import KafkaSettings


def test_plaintext_has_no_security() -> None:
    s = KafkaSettings()
    kw = connection_kwargs(s)
    assert kw["security_protocol"] == "PLAINTEXT"
    assert "sasl_mechanism" not in kw and "ssl_context" not in kw
    assert _security(s) is None


def test_sasl_ssl_reaches_plain_clients_and_faststream() -> None:
    s = KafkaSettings.model_validate(
        {
            "bootstrap_servers": "kafka:9093",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "kopru",
            "sasl_password": "s3cr3t",
        }
    )
    kw = connection_kwargs(s)
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_username"] == "kopru"
    assert kw["sasl_plain_password"] == "s3cr3t"
    assert isinstance(kw["ssl_context"], ssl.SSLContext)
    sec = _security(s)
    assert isinstance(sec, SASLScram512)
    assert sec.use_ssl and sec.ssl_context is not None


def test_ssl_without_sasl() -> None:
    s = KafkaSettings(security_protocol="SSL")
    assert isinstance(connection_kwargs(s)["ssl_context"], ssl.SSLContext)
    sec = _security(s)
    assert sec is not None and sec.use_ssl
