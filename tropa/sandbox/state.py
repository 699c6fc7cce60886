"""The sandbox's memory: accepted messages, every call, faults, and receipts it posts back."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from tropa.clock import utcnow
from tropa.logs import get_logger

log = get_logger("sandbox")
ReceiptWord = Literal["delivered", "undelivered", "rejected", "none"]


class Faults(BaseModel):
    """Misbehaviour to inject; every field off by default."""

    down: bool = Field(default=False, description="Answer every send with 503")
    slow_seconds: float = Field(default=0.0, description="Wait this long before answering")
    account_error: str | None = Field(
        default=None, description="Answer with this account error code, e.g. "
        "sender_not_registered, bad_credentials, no_balance")
    reject_numbers: list[str] = Field(default_factory=list,
                                      description="Recipients answered with invalid_recipient")
    receipt: ReceiptWord = Field(
        default="delivered", description="Receipt posted for accepted messages that asked "
        "for one: delivered, undelivered (temporary), rejected (final) or none")
    undelivered_receipts: int = Field(
        default=0, description="The next N receipts say undelivered, whatever `receipt` says")
    receipt_attempts: int = Field(
        default=12, ge=1, le=100, description="How often a receipt is posted until Tropa "
        "takes it (real providers retry for hours); 1 posts once, so a receipt that comes "
        "before Tropa committed the message id is lost unless Tropa keeps it")
    whatsapp_webhook: str | None = Field(
        default=None, description="Where WhatsApp status webhooks go (Cloud API apps set it "
        "once, not per message)")


@dataclass
class Verdict:
    """What the sandbox does with one send call."""

    kind: Literal["down", "account", "reject", "ok"]
    code: str = ""
    record: dict[str, Any] | None = None


class Sandbox:
    """Accepted messages (each once per idempotency key), every call, the current faults.

    With a `store` file (JSON lines; `tropa dev` keeps it in the data folder), accepted
    messages and their receipt states outlive the process: after a crash and restart the
    sandbox still deduplicates by key, answers with the same message ids and never hands
    out an id twice, so exactly-once can be checked across a whole-stack crash."""

    def __init__(self, receipts_secret: str = "dev-receipts-secret",
                 store: Path | None = None) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.in_progress = 0
        """Calls received and not yet answered."""
        self.faults = Faults()
        self.receipts_posted: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._secret = receipts_secret.encode()
        self._outbox: queue.Queue[tuple[str, dict[str, Any], int]] = queue.Queue()
        self._poster: threading.Thread | None = None
        self._store = store
        if store is not None:
            self._load(store)

    def _load(self, path: Path) -> None:
        highest = 0
        by_id: dict[str, dict[str, Any]] = {}
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: that write never completed
            if entry.get("op") == "message":
                record = entry["message"]
                self.messages.append(record)
                by_id[record["message_id"]] = record
                if record.get("idempotency_key"):
                    self.by_key[record["idempotency_key"]] = record
                number = str(record["message_id"]).removeprefix("sbx-")
                highest = max(highest, int(number) if number.isdigit() else 0)
            elif entry.get("op") == "status" and entry.get("message_id") in by_id:
                by_id[entry["message_id"]]["status"] = entry["status"]
            elif entry.get("op") == "reset":
                self.messages.clear()
                self.by_key.clear()
                by_id.clear()
        self._ids = itertools.count(highest + 1)

    def _persist(self, entry: dict[str, Any]) -> None:
        """Append one change to the store (the caller holds the lock)."""
        if self._store is None:
            return
        self._store.parent.mkdir(parents=True, exist_ok=True)
        with self._store.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    def accept(self, channel: str, key: str | None, payload: dict[str, Any],
               callback: str | None = None) -> Verdict:
        """Record the call, apply faults, deduplicate by key, keep the message."""
        with self.lock:
            # The call is on record as soon as it arrives, so a watcher sees sends in flight.
            self.calls.append({"channel": channel, "to": payload.get("to"), "key": key,
                               "at": utcnow().isoformat()})
            self.in_progress += 1
        try:
            return self._answer(channel, key, payload, callback)
        finally:
            with self.lock:
                self.in_progress -= 1

    def _answer(self, channel: str, key: str | None, payload: dict[str, Any],
                callback: str | None) -> Verdict:
        delay = self.faults.slow_seconds
        if delay > 0:
            time.sleep(delay)  # a slow provider, as the admin asked for
        with self.lock:
            faults = self.faults
            if faults.down:
                return Verdict("down", "unavailable")
            if faults.account_error:
                return Verdict("account", faults.account_error)
            if payload.get("to") in faults.reject_numbers:
                return Verdict("reject", "invalid_recipient")
            if key and key in self.by_key:
                return Verdict("ok", record=self.by_key[key])
            record = {"message_id": f"sbx-{next(self._ids)}", "channel": channel,
                      "idempotency_key": key, "status": "accepted",
                      "received_at": utcnow().isoformat(), "callback": callback,
                      **payload}
            self.messages.append(record)
            if key:
                self.by_key[key] = record
            self._persist({"op": "message", "message": record})
            word = self._next_receipt()
        if callback and word != "none":
            self.post_receipt(record, word, callback)
        return Verdict("ok", record=record)

    def _next_receipt(self) -> ReceiptWord:
        if self.faults.undelivered_receipts > 0:
            self.faults.undelivered_receipts -= 1
            return "undelivered"
        return self.faults.receipt

    def post_receipt(self, record: dict[str, Any], word: str, url: str) -> None:
        """Queue a receipt in the record's provider shape; a thread posts it with retries."""
        with self.lock:
            record["status"] = {"delivered": "delivered"}.get(word, word)
            self._persist({"op": "status", "message_id": record["message_id"],
                           "status": record["status"]})
        mid = record["message_id"]
        if record.get("shape") == "whatsapp":
            state = {"delivered": "delivered", "rejected": "failed"}.get(word, "sent")
            body: dict[str, Any] = {"object": "whatsapp_business_account", "entry": [
                {"changes": [{"field": "messages", "value": {"statuses": [
                    {"id": mid, "status": state, "recipient_id": record.get("to")}]}}]}]}
        elif record.get("shape") == "vonage":
            status, err = {"delivered": ("delivered", "0"), "undelivered": ("failed", "2"),
                           "rejected": ("rejected", "6")}[word]
            body = {"messageId": mid, "msisdn": record.get("to"), "status": status,
                    "err-code": err, "client-ref": record.get("idempotency_key"),
                    "message-timestamp": utcnow().strftime("%Y-%m-%d %H:%M:%S")}
        else:
            body = {"message_id": mid, "status": word}
        self._outbox.put((url, body, self.faults.receipt_attempts))
        with self.lock:
            if self._poster is None or not self._poster.is_alive():
                self._poster = threading.Thread(target=self._post_loop, daemon=True,
                                                name="sandbox-receipts")
                self._poster.start()

    def sign(self, raw: bytes) -> str:
        """The signature header value Tropa checks: HMAC-SHA256 of the body."""
        return "sha256=" + hmac.new(self._secret, raw, hashlib.sha256).hexdigest()

    def _post_loop(self) -> None:
        # Real providers retry receipts that were not acknowledged; so does the sandbox
        # (Tropa answers 404 while it has not yet recorded the provider's message id).
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    url, body, attempts = self._outbox.get(timeout=30)
                except queue.Empty:
                    return
                raw = json.dumps(body).encode()
                for attempt in range(attempts):
                    try:
                        answer = client.post(url, content=raw, headers={
                            "Content-Type": "application/json",
                            "X-Tropa-Signature": self.sign(raw)})
                        if answer.is_success:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(min(0.05 * 2 ** attempt, 2.0))
                with self.lock:
                    self.receipts_posted.append(body)

    def reset(self) -> None:
        """Forget every message, call and receipt; clear the faults."""
        with self.lock:
            self.messages.clear()
            self.by_key.clear()
            self.calls.clear()
            self.receipts_posted.clear()
            self.faults = Faults()
            self._persist({"op": "reset"})
