"""A thin client for the three services' HTTP APIs, acting as a named user."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
from cairn_devstack.stack import CairnStack


class Cairn:
    """Mints tokens and calls the APIs; raises with the problem body on an unexpected status."""

    def __init__(self, stack: CairnStack, jwt_secret: str) -> None:
        self.stack = stack
        self.secret = jwt_secret
        self.http = httpx.Client(timeout=15)

    def token(self, role: str, sub: str, marketplace: str, email: str = "", name: str = "") -> str:
        now = int(time.time())
        return jwt.encode(
            {
                "sub": sub,
                "role": role,
                "marketplace": marketplace,
                "email": email or f"{sub}@example.test",
                "name": name or sub,
                "iat": now,
                "exp": now + 3600,
            },
            self.secret,
            algorithm="HS256",
        )

    def as_user(
        self, role: str, sub: str, marketplace: str, *, email: str = "", name: str = ""
    ) -> User:
        return User(self, self.token(role, sub, marketplace, email, name))


class User:
    """One signed-in user."""

    def __init__(self, cairn: Cairn, token: str) -> None:
        self.cairn = cairn
        self.headers = {"authorization": f"Bearer {token}"}

    def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        expect: int | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        h = self.headers | (headers or {})
        if method == "POST":
            h.setdefault("idempotency-key", uuid.uuid4().hex)
        r = self.cairn.http.request(
            method, self.cairn.stack.url(service) + path, json=json, headers=h
        )
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} -> {r.status_code}: {r.text}"
        return r

    def get(self, service: str, path: str, expect: int = 200) -> Any:
        return self.call("GET", service, path, expect=expect).json()

    def post(
        self,
        service: str,
        path: str,
        json: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.call("POST", service, path, json=json, expect=expect, headers=headers).json()

    def put(self, service: str, path: str, json: Any, expect: int = 200) -> Any:
        return self.call("PUT", service, path, json=json, expect=expect).json()
