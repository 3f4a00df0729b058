"""How every Kafka client of a service authenticates (settings ``CAIRN_KAFKA_SECURITY_*``).

One place turns the settings into FastStream's security object (consumers, the relay's
producer) and into aiokafka keyword arguments (the readiness probe, the topic admin), so
the broker, the probe and the admin client can never disagree.
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from cairn_chassis.settings import ServiceSettings

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def _ssl_context(settings: ServiceSettings) -> ssl.SSLContext | None:
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


def broker_security(settings: ServiceSettings) -> BaseSecurity | None:
    """FastStream's security object, or None for a plaintext listener."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
        raise ValueError(
            f"{protocol} needs CAIRN_KAFKA_SASL_USERNAME and CAIRN_KAFKA_SASL_PASSWORD"
        )
    sasl_class = _SASL[settings.kafka_sasl_mechanism]
    return sasl_class(
        settings.kafka_sasl_username,
        settings.kafka_sasl_password,
        ssl_context=context,
        use_ssl=protocol == "SASL_SSL",
    )


def client_kwargs(settings: ServiceSettings) -> dict[str, Any]:
    """The same configuration as keyword arguments for aiokafka clients."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    context = _ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if protocol.startswith("SASL"):
        kwargs |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return kwargs
