"""Verifying bearer tokens, including during a key rotation."""

from __future__ import annotations

import time

import jwt
import pytest
from cairn_chassis.auth import TokenVerifier
from cairn_chassis.errors import Problem
from cairn_chassis.settings import ServiceSettings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

OLD = "the-old-secret-the-old-secret-xxxx"
NEW = "the-new-secret-the-new-secret-xxxx"


def signed(key: object, algorithm: str, *, exp_in: int = 60, sub: str = "u1") -> str:
    claims = {"sub": sub, "role": "customer", "marketplace": "mk", "exp": int(time.time()) + exp_in}
    return jwt.encode(claims, key, algorithm=algorithm)  # type: ignore[arg-type]


def rsa_pair() -> tuple[object, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Problem) as caught:
        verifier.verify(token)
    assert caught.value.status == 401
    return caught.value.code


def test_during_a_rotation_tokens_of_both_keys_are_accepted_and_no_other() -> None:
    verifier = TokenVerifier(ServiceSettings(jwt_secret=NEW, jwt_previous_secret=OLD))

    assert verifier.verify(signed(NEW, "HS256", sub="new")).user_id == "new"
    assert verifier.verify(signed(OLD, "HS256", sub="old")).user_id == "old"
    assert refused(verifier, signed("a-forger-s-secret-a-forger-s-xxxx", "HS256")) == (
        "auth.invalid_token"
    )
    # An expired token of the previous key is expired, not "invalid".
    assert refused(verifier, signed(OLD, "HS256", exp_in=-10)) == "auth.token_expired"


def test_after_the_rotation_the_old_key_is_refused() -> None:
    verifier = TokenVerifier(ServiceSettings(jwt_secret=NEW))
    assert refused(verifier, signed(OLD, "HS256")) == "auth.invalid_token"


def test_moving_from_hs256_to_rs256_accepts_both_while_the_secret_is_previous() -> None:
    private, public = rsa_pair()
    other_private, _ = rsa_pair()
    verifier = TokenVerifier(ServiceSettings(jwt_public_key=public, jwt_previous_secret=OLD))

    assert verifier.verify(signed(private, "RS256", sub="rs")).user_id == "rs"
    assert verifier.verify(signed(OLD, "HS256", sub="hs")).user_id == "hs"
    assert refused(verifier, signed(other_private, "RS256")) == "auth.invalid_token"
    assert refused(TokenVerifier(ServiceSettings(jwt_public_key=public)), signed(OLD, "HS256")) == (
        "auth.invalid_token"
    )


def _claims(**over: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "sub": "u1",
        "role": "customer",
        "marketplace": "mk",
        "exp": int(time.time()) + 60,
    }
    claims.update(over)
    return claims


@pytest.mark.parametrize(
    "claims",
    [
        # PyJWT reads exp with int(), so a string passed as "valid for ever".
        {"exp": str(int(time.time()) + 3600)},
        {"sub": ""},
        {"sub": "   "},
        {"sub": "u1\r\nX-Evil: 1"},
        {"marketplace": "mk\u202e"},
        {"sub": 42},
    ],
    ids=["exp-string", "empty-sub", "blank-sub", "crlf-sub", "bidi-marketplace", "int-sub"],
)
def test_a_signed_token_with_malformed_claims_is_refused(claims: dict[str, object]) -> None:
    verifier = TokenVerifier(ServiceSettings(jwt_secret=NEW))
    token = jwt.encode(_claims(**claims), NEW, algorithm="HS256")
    assert refused(verifier, token) == "auth.invalid_token"


def test_control_characters_in_the_name_and_email_claims_never_reach_the_services() -> None:
    # A CR/LF in the name made every email to that person impossible to build (issue 16).
    verifier = TokenVerifier(ServiceSettings(jwt_secret=NEW))
    token = jwt.encode(
        _claims(name="Ada\r\nBcc: everyone@x.test\u202e", email="ada@x.test\r\nBcc: b@x.test"),
        NEW,
        algorithm="HS256",
    )
    principal = verifier.verify(token)
    assert principal.name == "Ada Bcc: everyone@x.test"
    assert principal.email == "", "an address with a line break is no address"
