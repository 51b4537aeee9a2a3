"""Connection options for a real cluster (PLAINTEXT, SSL, SASL), for Faust and for aiokafka."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from app.settings import KafkaSettings


def _ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    if "SSL" not in kafka.security_protocol:
        return None
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile:
        context.load_cert_chain(
            str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
        )
    return context


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (producer, consumer, admin)."""
    if not kafka.bootstrap_servers:
        raise ValueError("kafka.bootstrap_servers is not set")
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    context = _ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL"):
        assert kafka.sasl_password is not None
        options.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password.get_secret_value(),
        )
    return options


def faust_broker(kafka: KafkaSettings) -> tuple[str, Any]:
    """Faust's ``broker`` URL list and ``broker_credentials``."""
    if not kafka.bootstrap_servers:
        raise ValueError("kafka.bootstrap_servers is not set")
    urls = ";".join(f"kafka://{h.strip()}" for h in kafka.bootstrap_servers.split(","))
    context = _ssl_context(kafka)
    credentials: Any = None
    if kafka.security_protocol.startswith("SASL"):
        assert kafka.sasl_password is not None and kafka.sasl_username is not None
        credentials = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return urls, credentials
