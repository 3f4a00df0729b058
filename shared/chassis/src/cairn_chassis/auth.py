"""JWT bearer authentication (DESIGN §7).

Tokens come from the marketplace's identity provider, the same configuration for every
service: verified with the provider's JWKS (``CAIRN_JWT_JWKS_URL``: the key the token's
``kid`` names, fetched and cached, a rotated-in key fetched when first seen, at most once
per cool-down), or for simple setups with a static HS256 secret or RS256 public key.
Issuer and audience are checked when configured. Claims (names configurable, a dotted
path reaching into an object): the user (``sub``), ``marketplace``, ``role`` (customer ·
freelancer · operator, or a list holding one of them), ``email``, ``name``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from cairn_schemas.text import FORBIDDEN_IN_LINE, clean_line
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.types import Options

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


#: Algorithms a JWKS key may never be used with: no signature, or a symmetric one (the
#: public key would become the HMAC secret: the algorithm confusion attack).
_REFUSED_JWKS_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})


@dataclass(frozen=True)
class ClaimNames:
    """Where the principal's fields are in a token (``CAIRN_JWT_CLAIM_*``)."""

    sub: str = "sub"
    marketplace: str = "marketplace"
    role: str = "role"
    email: str = "email"
    name: str = "name"


class TokenVerifier:
    """Verifies bearer tokens with the identity provider's JWKS or the configured static
    key, and during a static key's rotation with the previous one too (tried second, and
    only when the current key's signature fails)."""

    def __init__(self, settings: ServiceSettings, *, jwks_cooldown_s: float = 30.0) -> None:
        self.keys: list[tuple[str, str]] = []  # (key, algorithm), current first
        if settings.jwt_public_key:
            self.keys.append((settings.jwt_public_key, "RS256"))
        elif settings.jwt_secret:
            self.keys.append((settings.jwt_secret, "HS256"))
        elif not settings.jwt_jwks_url:
            raise ValueError(
                "set CAIRN_JWT_JWKS_URL (your identity provider's keys), CAIRN_JWT_SECRET "
                "(HS256) or CAIRN_JWT_PUBLIC_KEY (RS256)"
            )
        if settings.jwt_previous_public_key:
            self.keys.append((settings.jwt_previous_public_key, "RS256"))
        if settings.jwt_previous_secret:
            self.keys.append((settings.jwt_previous_secret, "HS256"))
        self.jwks: jwt.PyJWKClient | None = None
        if settings.jwt_jwks_url:
            refused = _REFUSED_JWKS_ALGORITHMS.intersection(settings.jwt_algorithms)
            if refused or not settings.jwt_algorithms:
                raise ValueError(f"CAIRN_JWT_ALGORITHMS may not be empty or hold {refused}")
            self.jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url,
                cache_jwk_set=True,
                lifespan=max(settings.jwt_jwks_cache_s, 1),
                timeout=5,
                # An unknown kid fetches the set again at most this often (a key rotated
                # in is picked up within it): tokens with made-up kids cannot turn Cairn
                # into a flood against the provider.
                cooldown_duration=jwks_cooldown_s,
            )
        self.algorithms = list(settings.jwt_algorithms)
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.claims = ClaimNames(
            sub=settings.jwt_claim_sub,
            marketplace=settings.jwt_claim_marketplace,
            role=settings.jwt_claim_role,
            email=settings.jwt_claim_email,
            name=settings.jwt_claim_name,
        )

    def _options(self) -> Options:
        return {"require": ["exp"], "verify_aud": self.audience is not None}

    def _decode(self, token: str) -> dict[str, object]:
        if self.jwks is not None and (not self.keys or "kid" in jwt.get_unverified_header(token)):
            try:
                signing = self.jwks.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError as exc:
                raise _ProviderUnreachable(str(exc)) from exc
            except jwt.PyJWKClientError as exc:
                raise jwt.InvalidTokenError(f"no key of the identity provider: {exc}") from exc
            claims: dict[str, object] = jwt.decode(
                token,
                signing.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options=self._options(),
            )
            return claims
        mismatch: jwt.InvalidTokenError | None = None
        for key, algorithm in self.keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=self.audience,
                    issuer=self.issuer,
                    options=self._options(),
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
        """The principal in ``token``, or a 401 Problem saying what is wrong with it (503
        ``auth.provider_unavailable`` when the identity provider's keys cannot be had)."""
        try:
            claims = self._decode(token)
        except jwt.ExpiredSignatureError as exc:
            raise Problem(401, "auth.token_expired", "The access token has expired.") from exc
        except _ProviderUnreachable as exc:
            raise Problem(
                503,
                "auth.provider_unavailable",
                "The identity provider's signing keys cannot be fetched right now; try again.",
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise Problem(
                401, "auth.invalid_token", f"The access token is not valid: {exc}."
            ) from exc
        return _principal(claims, self.claims)

    async def averify(self, token: str) -> Principal:
        """:meth:`verify` for async code: a JWKS fetch (a cache miss) runs in a thread
        instead of blocking the event loop."""
        if self.jwks is None:
            return self.verify(token)
        return await asyncio.to_thread(self.verify, token)


class _ProviderUnreachable(Exception):
    """The JWKS could not be fetched (network, the provider down)."""


def _claim(claims: dict[str, object], name: str) -> object:
    """A claim by its name, else by a dotted path into object claims (``a.b``)."""
    if name in claims:
        return claims[name]
    value: object = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _identifier(claims: dict[str, object], name: str, what: str) -> str:
    """A claim that identifies someone or something: a non-empty string without control
    characters (it becomes part of keys and rows; a look-alike must not pass)."""
    value = _claim(claims, name)
    if not isinstance(value, str) or not value.strip() or FORBIDDEN_IN_LINE.search(value):
        raise Problem(401, "auth.invalid_token", f"The access token names no valid {what}.")
    return value


def _role(claims: dict[str, object], name: str) -> Role:
    value = _claim(claims, name)
    if isinstance(value, list):  # e.g. realm_access.roles: exactly one of ours among them
        ours = [r for r in ROLES if r in value]
        value = ours[0] if len(ours) == 1 else None
    for role in ROLES:
        if value == role:
            return role
    raise Problem(
        401,
        "auth.invalid_token",
        "The access token's role must be customer, freelancer or operator.",
    )


def _principal(claims: dict[str, object], names: ClaimNames | None = None) -> Principal:
    """The principal the verified ``claims`` describe, or a 401 Problem."""
    names = names or ClaimNames()
    # PyJWT checks `exp` with int(), so "exp": "9999999999" (a string) passed.
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise Problem(401, "auth.invalid_token", "The access token's exp must be a number.")
    user_id = _identifier(claims, names.sub, f"subject ({names.sub})")
    role = _role(claims, names.role)
    marketplace = _identifier(claims, names.marketplace, "marketplace")
    email = _claim(claims, names.email)
    name = _claim(claims, names.name)
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
