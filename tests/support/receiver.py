"""A webhook receiver on a real port: checks signatures, keeps each Idempotency-Key once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

SECRET = "whsec-test-7f3a9c"


@dataclass
class Receiver:
    """An external system: checks signatures, keeps each Idempotency-Key's body once."""

    answers: list[tuple[int, str]] = field(default_factory=list)
    """Scripted answers to the first calls, in order; later calls get 200."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/hooks/{name}", methods=["POST", "PUT"])
        async def hook(name: str, request: Request) -> Response:
            raw = await request.body()
            stamp = request.headers.get("x-tropa-timestamp", "")
            expected = "sha256=" + hmac.new(SECRET.encode(), f"{stamp}.".encode() + raw,
                                            hashlib.sha256).hexdigest()
            signed = hmac.compare_digest(expected, request.headers.get("x-tropa-signature", ""))
            key = request.headers.get("idempotency-key", "")
            with self.lock:
                self.calls.append({"name": name, "method": request.method, "signed": signed,
                                   "key": key, "source": request.headers.get("x-source"),
                                   "type": request.headers.get("content-type")})
                if not signed:
                    return Response("bad signature", status_code=401)
                if len(self.calls) <= len(self.answers):
                    status, text = self.answers[len(self.calls) - 1]
                    # a scripted redirect points at another hook, which must not be called
                    moved = {"Location": "/hooks/redirected"} if 300 <= status < 400 else None
                    return Response(text, status_code=status, headers=moved)
                self.accepted.setdefault(key, {"name": name, "body": json.loads(raw)})
            return Response("ok")

        return app
