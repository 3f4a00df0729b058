"""JWT bearer authentication (DESIGN §7).

Tokens come from the marketplace's identity provider: HS256 with a shared secret or RS256
with a public key, the same configuration for every service. Claims: ``sub``,
``marketplace``, ``role`` (customer · freelancer · operator), ``email``, ``name``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from cairn_schemas.text import FORBIDDEN_IN_LINE, clean_line
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cairn_chassis.errors import Problem
from cairn_chassis.settings import ServiceSettings

Role = Literal["customer", "freelancer", "operator"]
ROLES: tuple[Role, ...] = ("customer", "freelancer", "operator")


@dataclass(frozen=True)
class Principal:
    """The signed-in user a request acts for."""

    user_id: str
    marketplace_id: str
    role: Role
    email: str
    name: str


class TokenVerifier:
    """Verifies bearer tokens with the configured key, and during a rotation with the
    previous one too (tried second, and only when the current key's signature fails)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.keys: list[tuple[str, str]] = []  # (key, algorithm), current first
        if settings.jwt_public_key:
            self.keys.append((settings.jwt_public_key, "RS256"))
        elif settings.jwt_secret:
            self.keys.append((settings.jwt_secret, "HS256"))
        else:
            raise ValueError("set CAIRN_JWT_SECRET (HS256) or CAIRN_JWT_PUBLIC_KEY (RS256)")
        if settings.jwt_previous_public_key:
            self.keys.append((settings.jwt_previous_public_key, "RS256"))
        if settings.jwt_previous_secret:
            self.keys.append((settings.jwt_previous_secret, "HS256"))
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer

    def _decode(self, token: str) -> dict[str, object]:
        mismatch: jwt.InvalidTokenError | None = None
        for key, algorithm in self.keys:
            try:
                claims: dict[str, object] = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=self.audience,
                    issuer=self.issuer,
                    options={"require": ["sub", "exp"], "verify_aud": self.audience is not None},
                )
            except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
                # Not this key's token: the next key may have signed it. Anything else
                # (expired, wrong audience) was judged with the right key and is final.
                mismatch = mismatch or exc
                continue
            return claims
        assert mismatch is not None
        raise mismatch

    def verify(self, token: str) -> Principal:
        """The principal in ``token``, or a 401 Problem saying what is wrong with it."""
        try:
            claims = self._decode(token)
        except jwt.ExpiredSignatureError as exc:
            raise Problem(401, "auth.token_expired", "The access token has expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise Problem(
                401, "auth.invalid_token", f"The access token is not valid: {exc}."
            ) from exc
        return _principal(claims)


def _identifier(claims: dict[str, object], name: str, what: str) -> str:
    """A claim that identifies someone or something: a non-empty string without control
    characters (it becomes part of keys and rows; a look-alike must not pass)."""
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or FORBIDDEN_IN_LINE.search(value):
        raise Problem(401, "auth.invalid_token", f"The access token names no valid {what}.")
    return value


def _principal(claims: dict[str, object]) -> Principal:
    """The principal the verified ``claims`` describe, or a 401 Problem."""
    # PyJWT checks `exp` with int(), so "exp": "9999999999" (a string) passed.
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise Problem(401, "auth.invalid_token", "The access token's exp must be a number.")
    user_id = _identifier(claims, "sub", "subject (sub)")
    role = claims.get("role")
    if role not in ROLES:
        raise Problem(
            401,
            "auth.invalid_token",
            "The access token's role must be customer, freelancer or operator.",
        )
    marketplace = _identifier(claims, "marketplace", "marketplace")
    email = claims.get("email")
    name = claims.get("name")
    return Principal(
        user_id=user_id,
        marketplace_id=marketplace,
        role=role,
        # An address with a control character in it is no address (a CR/LF would add
        # headers); the name is only shown, so it is made one clean line instead.
        email=email if isinstance(email, str) and not FORBIDDEN_IN_LINE.search(email) else "",
        name=clean_line(name) if isinstance(name, str) else "",
    )


def mint_token(
    settings: ServiceSettings,
    *,
    sub: str,
    role: Role,
    marketplace: str,
    email: str = "",
    name: str = "",
    ttl_s: int = 12 * 3600,
) -> str:
    """A token for local development and tests (needs the HS256 secret or a private key)."""
    now = int(time.time())
    claims = {
        "sub": sub,
        "role": role,
        "marketplace": marketplace,
        "email": email,
        "name": name,
        "iat": now,
        "exp": now + ttl_s,
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_private_key:
        return jwt.encode(claims, settings.jwt_private_key, algorithm="RS256")
    if settings.jwt_secret:
        return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    raise ValueError("minting needs CAIRN_JWT_SECRET or CAIRN_JWT_PRIVATE_KEY")


_BEARER = HTTPBearer(
    auto_error=False,  # our own 401 problem, below
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="A token from the marketplace's identity provider; claims `sub`, "
    "`marketplace`, `role`, `email`, `name`.",
)


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    """FastAPI dependency: the request's principal, or 401. (Through ``HTTPBearer``, every
    route that depends on it declares the bearer scheme in the OpenAPI document.)"""
    if credentials is None or not credentials.credentials.strip():
        raise Problem(
            401, "auth.unauthenticated", "Send an access token as 'Authorization: Bearer <token>'."
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials.strip())


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(principal: Principal, *roles: Role) -> None:
    """403 unless the principal has one of ``roles``."""
    if principal.role not in roles:
        raise Problem(403, "auth.wrong_role", f"Only a {' or '.join(roles)} may do this.")
