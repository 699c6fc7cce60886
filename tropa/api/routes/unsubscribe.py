"""Unsubscribe links of marketing mail: the one-click POST (RFC 8058) and the page.

Both withdraw the marketing consent the token names; the token is the credential, so
neither needs an API key.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from tropa.api.errors import ErrorOut
from tropa.policy.unsubscribe import MAX_TOKEN, TokenInvalid
from tropa.services.customers import CustomerNotFound
from tropa.services.unsubscribe import unsubscribe
from tropa.store.db import session_scope

router = APIRouter(prefix="/v1/unsubscribe", tags=["unsubscribe"])
Token = Annotated[str, Query(min_length=1, max_length=MAX_TOKEN, pattern=r"^[^\x00]+$",
                             description="The token of the List-Unsubscribe link")]
_REFUSED: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Not a valid unsubscribe link"},
    404: {"model": ErrorOut, "description": "The customer no longer exists"}}

_PAGES = {
    "ru": ("Вы отписались", "Мы больше не будем присылать вам рекламу {channel}. Сообщения "
           "про заказы и платежи будут приходить как прежде."),
    "en": ("You are unsubscribed", "We will send you no more marketing {channel}. Messages "
           "about your orders and payments still reach you."),
}
_CHANNELS = {
    "ru": {"email": "по электронной почте", "sms": "в SMS", "whatsapp": "в WhatsApp",
           "telegram": "в Telegram", "push": "в push-уведомлениях", "voice": "звонками"},
    "en": {"email": "by email", "sms": "by SMS", "whatsapp": "on WhatsApp",
           "telegram": "on Telegram", "push": "by push notification", "voice": "by phone call"},
}
_BAD_LINK = ("Ссылка недействительна / This link is not valid",
             "Эта ссылка для отписки не подходит: откройте её прямо из письма. / This "
             "unsubscribe link does not work: open it straight from the email.")


def _withdraw(engine: sa.Engine, secret: str, token: str, source: str) -> tuple[str, str]:
    """The customer's locale and the channel, after the consent is withdrawn."""
    try:
        with session_scope(engine) as session:
            customer, who = unsubscribe(session, secret=secret, token=token, source=source)
            return customer.locale, who.channel
    except TokenInvalid as exc:
        raise HTTPException(400, "not a valid unsubscribe link: use the link of the "
                            "List-Unsubscribe header as it is") from exc
    except CustomerNotFound as exc:
        raise HTTPException(404, "this customer no longer exists") from exc


def _secret(request: Request) -> str:
    return str(request.app.state.settings.providers.unsubscribe_secret.get_secret_value())


@router.post("", responses=_REFUSED)
async def one_click(request: Request, t: Token) -> dict[str, str]:
    """One-click unsubscribe (RFC 8058): the mail client posts `List-Unsubscribe=One-Click`."""
    _, channel = await run_in_threadpool(_withdraw, request.app.state.engine, _secret(request),
                                         t, "unsubscribe:one_click")
    return {"status": "unsubscribed", "category": "marketing", "channel": channel}


@router.get("", response_class=HTMLResponse, responses=_REFUSED)
async def page(request: Request, t: Token) -> HTMLResponse:
    """The link opened in a browser: unsubscribe and confirm in the customer's language."""
    try:
        locale, channel = await run_in_threadpool(
            _withdraw, request.app.state.engine, _secret(request), t, "unsubscribe:page")
    except HTTPException as exc:
        return _html("ru", *_BAD_LINK, status=exc.status_code)
    language = locale[:2].lower() if locale[:2].lower() in _PAGES else "en"
    title, text = _PAGES[language]
    label = _CHANNELS[language].get(channel, channel)
    return _html(language, title, text.format(channel=label))


def _html(language: str, title: str, text: str, status: int = 200) -> HTMLResponse:
    body = (f"<!doctype html><html lang={language}><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<meta name=robots content=noindex><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></html>")
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store",
                                                           "Referrer-Policy": "no-referrer"})
