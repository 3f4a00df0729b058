"""JWKS verification (issue 19, item 6) against a local identity provider's key endpoint:
keys fetched by kid and cached, a rotation picked up when the new kid first shows, the
old key refused once it left the set, issuer and audience checked, claim names
configurable; an unknown kid does not flood the provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cairn_chassis.auth import TokenVerifier
from cairn_chassis.errors import Problem
from cairn_chassis.settings import ServiceSettings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://idp.test/realms/cairn"
AUDIENCE = "cairn-api"


class Provider:
    """A JWKS endpoint serving whichever keys the test says, counting fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                body = json.dumps({"keys": provider.jwks()}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jwks(self) -> list[dict[str, Any]]:
        out = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            out.append(jwk | {"kid": kid, "use": "sig", "alg": "RS256"})
        return out

    def rotate_in(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, kid: str, *, algorithm: str = "RS256", **over: Any) -> str:
        claims = {
            "sub": "u-1",
            "marketplace": "mk",
            "role": "customer",
            "email": "u@mk.test",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": int(time.time()) + 600,
        } | over
        return jwt.encode(claims, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    p.rotate_in("k1")
    yield p
    p.server.shutdown()


def verifier(provider: Provider, cooldown_s: float = 30.0, **over: Any) -> TokenVerifier:
    return TokenVerifier(
        ServiceSettings(
            jwt_jwks_url=provider.url,
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            **over,
        ),
        jwks_cooldown_s=cooldown_s,
    )


def refused(v: TokenVerifier, token: str) -> str:
    with pytest.raises(Problem) as caught:
        v.verify(token)
    assert caught.value.status == 401
    return caught.value.code


def test_keys_are_fetched_by_kid_cached_and_a_rotation_is_picked_up(provider: Provider) -> None:
    v = verifier(provider, cooldown_s=0.3)
    for _ in range(5):
        assert v.verify(provider.token("k1")).user_id == "u-1"
    assert provider.fetches == 1, "cached"

    provider.rotate_in("k2")  # the provider publishes a new key and signs with it
    time.sleep(0.4)  # (the cool-down since the last fetch; 30 s in the services)
    assert v.verify(provider.token("k2")).user_id == "u-1"
    assert provider.fetches == 2, "an unknown kid fetches the set once"
    assert v.verify(provider.token("k1")).user_id == "u-1", "both published: both good"

    old_token = provider.token("k1")
    del provider.keys["k1"]  # the old key is retired
    v_later = verifier(provider)
    assert v_later.verify(provider.token("k2")).role == "customer"
    assert refused(v_later, old_token) == "auth.invalid_token"


def test_an_unknown_kid_does_not_flood_the_provider(provider: Provider) -> None:
    v = verifier(provider)
    v.verify(provider.token("k1"))
    provider.rotate_in("forged")
    forged = provider.token("forged")
    del provider.keys["forged"]
    for _ in range(5):
        assert refused(v, forged) == "auth.invalid_token"
    assert provider.fetches == 1, "no refetch within the cool-down, not one per token"


def test_issuer_audience_and_algorithm_are_checked(provider: Provider) -> None:
    v = verifier(provider)
    assert refused(v, provider.token("k1", iss="https://other.test")) == "auth.invalid_token"
    assert refused(v, provider.token("k1", aud="another-app")) == "auth.invalid_token"
    # The public key used as an HMAC secret (algorithm confusion) is refused. PyJWT will
    # not even sign that, so the token is put together by hand.
    public_pem = (
        provider.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"sub": "u", "marketplace": "mk", "role": "customer", "iss": ISSUER, "aud": AUDIENCE}

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps(claims | {"exp": int(time.time()) + 60}).encode())
    signature = b64(hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest())
    confused = (header + b"." + payload + b"." + signature).decode()
    assert refused(v, confused) == "auth.invalid_token"
    with pytest.raises(ValueError, match="CAIRN_JWT_ALGORITHMS"):
        verifier(provider, jwt_algorithms=["RS256", "HS256"])


def test_claim_names_follow_the_identity_provider(provider: Provider) -> None:
    v = verifier(
        provider,
        jwt_claim_sub="preferred_username",
        jwt_claim_marketplace="https://cairn.test/marketplace",
        jwt_claim_role="realm_access.roles",
    )
    token = provider.token(
        "k1",
        preferred_username="ada",
        **{"https://cairn.test/marketplace": "fjord"},
        realm_access={"roles": ["offline_access", "freelancer"]},
    )
    principal = v.verify(token)
    assert (principal.user_id, principal.marketplace_id, principal.role) == (
        "ada",
        "fjord",
        "freelancer",
    )
    two_roles = provider.token(
        "k1",
        preferred_username="ada",
        **{"https://cairn.test/marketplace": "fjord"},
        realm_access={"roles": ["customer", "operator"]},
    )
    assert refused(v, two_roles) == "auth.invalid_token", "one role, never a guess"


def test_an_unreachable_provider_is_a_503_not_a_401(provider: Provider) -> None:
    v = verifier(provider)
    token = provider.token("k1")
    provider.server.shutdown()
    provider.server.server_close()
    with pytest.raises(Problem) as caught:
        v.verify(token)
    assert (caught.value.status, caught.value.code) == (503, "auth.provider_unavailable")


def test_production_wants_issuer_and_audience_with_a_jwks(provider: Provider) -> None:
    settings = ServiceSettings(jwt_jwks_url=provider.url, database_url="postgresql+asyncpg://x/y")
    assert any("CAIRN_JWT_ISSUER" in v for v in settings.development_values())
