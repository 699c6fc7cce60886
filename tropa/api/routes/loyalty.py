"""Loyalty: balances and statements by any identifier, accruals, write-offs, coupons, levels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from tropa.api.deps import require
from tropa.api.errors import ERRORS, ErrorOut, InvalidField
from tropa.api.schemas.loyalty import (
    AccrualIn,
    CancelIn,
    CardOut,
    IssueIn,
    LevelOut,
    LevelsOut,
    RedeemIn,
    RefundIn,
    WriteOffIn,
)
from tropa.clock import utcnow
from tropa.customers.identifiers import (
    CustomerNotFound,
    Identifier,
    IdentifierInvalid,
    IdentifierType,
    resolve,
)
from tropa.dsl.durations import parse_duration
from tropa.dsl.plan import EventIn
from tropa.errors import LoyaltyError, LoyaltyNotFound, LoyaltyRefused, Overdraw
from tropa.loyalty import coupons, ledger, statement
from tropa.loyalty.card_link import verify_card_token
from tropa.loyalty.coupons import CouponView, SeriesSpec
from tropa.loyalty.models import Balance, Entry, OperationResult, Source
from tropa.loyalty.platform import found_by, percent_of
from tropa.loyalty.programme import Programme, load_programme
from tropa.services.loyalty_events import emit, level_event
from tropa.store.db import session_scope

router = APIRouter(prefix="/v1/loyalty", tags=["loyalty"], responses={
    **ERRORS,
    404: {"model": ErrorOut, "description": "Unknown customer, operation, series or code"},
    409: {"model": ErrorOut, "description": "Not enough balance (with `available`), or a "
          "rule refused it (with `reason`)"}})
WRITE = [Depends(require("loyalty:write"))]
READ = [Depends(require("read"))]
T = TypeVar("T")
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def _programme(request: Request) -> Programme:
    state = request.app.state
    if getattr(state, "loyalty_programme", None) is None:
        state.loyalty_programme = load_programme(state.settings.loyalty.programme_file)
    programme: Programme = state.loyalty_programme
    return programme


def _source(request: Request) -> Source:
    key = request.headers.get("X-API-Key", "")
    # The key's public id (`tropa_<id>_<secret>`), never the secret part.
    return Source(kind="api", api_key=key.split("_")[1] if key.count("_") >= 2 else "key")


async def _do(request: Request, work: Callable[[Session], T]) -> T | JSONResponse:
    """Run `work` in a session off the event loop; loyalty errors become 404/409/422."""

    def run() -> T:
        with session_scope(request.app.state.engine) as session:
            return work(session)

    try:
        return await run_in_threadpool(run)
    except Overdraw as exc:
        return JSONResponse(status_code=409, content={
            "detail": str(exc), "available": exc.available, "requested": exc.requested})
    except LoyaltyRefused as exc:
        return JSONResponse(status_code=409, content={"detail": str(exc), "reason": exc.reason})
    except (LoyaltyNotFound, CustomerNotFound) as exc:
        return JSONResponse(status_code=404, content={"detail": str(exc)})
    except IdentifierInvalid as exc:
        raise InvalidField(["body", "identifier", "value"], str(exc)) from exc
    except LoyaltyError as exc:
        raise InvalidField(["body"], str(exc)) from exc


async def _announce(request: Request, result: Any, programme: Programme) -> None:
    if isinstance(result, OperationResult) and result.level_changed is not None:
        event: EventIn = level_event(result.customer_id, programme.programme,
                                     result.level_changed, str(result.operation_id))
        await emit(request.app.state.event_router, [event])


def _usable(identifier: Identifier | None, loc: list[str | int]) -> None:
    """A value that is blank once trimmed names no one: a 422, before any lookup."""
    if identifier is not None and not identifier.value.strip():
        raise InvalidField(loc, "the identifier's value is blank; give an id, phone, email or "
                           "card number")


def _identifier(id: str | None, external_id: str | None, phone: str | None,
                email: str | None, card: str | None) -> Identifier:
    given: dict[IdentifierType, str | None] = {
        "id": id, "external_id": external_id, "phone": phone, "email": email, "card": card}
    named = [(k, v) for k, v in given.items() if v]
    if len(named) != 1:
        raise InvalidField(["query"], "give exactly one of the query parameters id, "
                           "external_id, phone, email or card")
    identifier = Identifier(type=named[0][0], value=str(named[0][1]))
    _usable(identifier, ["query", named[0][0]])
    return identifier


IdQuery = Annotated[str | None, Query(min_length=1, max_length=320, pattern=r"^[^\x00]+$")]


def by_identifier(id: IdQuery = None, external_id: IdQuery = None, phone: IdQuery = None,
                  email: IdQuery = None, card: IdQuery = None) -> Identifier:
    """The customer's identifier from exactly one query parameter."""
    return _identifier(id, external_id, phone, email, card)


Who = Annotated[Identifier, Depends(by_identifier)]


@router.get("/balance", response_model=Balance, dependencies=READ)
async def get_balance(request: Request, who: Who) -> Any:
    """Balance, pending points, nearest burn and level, computed as of now."""
    programme = _programme(request)
    return await _do(request, lambda s: ledger.balance(s, programme, resolve(s, who).id))


@router.get("/entries", response_model=list[Entry], dependencies=READ)
async def get_entries(request: Request, who: Who,
                      account: Literal["bonus", "qualification"] | None = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100,
                      before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Any:
    """Statement lines, newest first; page with `before` = the last id seen."""
    programme = _programme(request)
    return await _do(request, lambda s: statement.entries(
        s, programme, resolve(s, who).id, account=account, limit=limit, before=before))


@router.post("/accruals", response_model=OperationResult, dependencies=WRITE)
async def post_accrual(request: Request, body: AccrualIn) -> Any:
    """Accrue a fixed amount or a percent of an order (rounded down to whole points)."""
    programme = _programme(request)
    _usable(body.identifier, ["body", "identifier", "value"])
    now = utcnow()
    if body.amount is not None:
        amount = body.amount
    else:
        assert body.percent_of_order is not None and body.order is not None
        amount = percent_of(body.order.total, body.percent_of_order)
        if amount <= 0:
            raise InvalidField(["body", "percent_of_order"], f"{body.percent_of_order}% of "
                               f"{body.order.total} rounds down to 0 points; nothing to accrue")
    try:
        active_from = body.active_from or (
            now + parse_duration(body.activates_in) if body.activates_in else now)
    except OverflowError as exc:
        raise InvalidField(["body", "activates_in"], "activation lies past the year 9999; "
                           "give a shorter delay") from exc
    try:
        expires_at = body.expires_at or (
            active_from + parse_duration(body.expires_in) if body.expires_in else None)
    except OverflowError as exc:
        raise InvalidField(["body", "expires_in"], "the burn time lies past the year 9999; "
                           "give a shorter lifetime") from exc
    if expires_at is not None and expires_at <= active_from:
        raise InvalidField(["body", "expires_at"], "the burn time must be after the accrual "
                           f"activates ({active_from.isoformat()}); give a later one")
    if expires_at is not None and expires_at - active_from > timedelta(days=36600):
        raise InvalidField(["body", "expires_at"], "a burn time more than 100 years away")
    source = _source(request)

    def work(s: Session) -> OperationResult:
        return ledger.accrue(
            s, programme, customer_id=resolve(s, body.identifier).id, amount=amount,
            idempotency_key=f"api/{body.idempotency_key}", source=source,
            account=body.account, reason=body.reason, active_from=active_from,
            expires_at=expires_at, order_id=body.order.id if body.order else None,
            found_by=found_by(body.identifier), now=now)

    result = await _do(request, work)
    await _announce(request, result, programme)
    return result


@router.post("/write-offs", response_model=OperationResult, dependencies=WRITE)
async def post_write_off(request: Request, body: WriteOffIn) -> Any:
    """Write off bonus points nearest to expiry first; 409 with `available` when short."""
    programme = _programme(request)
    _usable(body.identifier, ["body", "identifier", "value"])
    source = _source(request)
    return await _do(request, lambda s: ledger.write_off(
        s, programme, customer_id=resolve(s, body.identifier).id, amount=body.amount,
        idempotency_key=f"api/{body.idempotency_key}", source=source, reason=body.reason,
        order_id=body.order_id, found_by=found_by(body.identifier)))


@router.post("/operations/{operation_id}/cancel", response_model=OperationResult,
             dependencies=WRITE)
async def cancel_operation(request: Request, body: CancelIn,
                           operation_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Any:
    """Cancel an accrual or a write-off; a write-off's points return to their own buckets."""
    programme = _programme(request)
    source = _source(request)
    result = await _do(request, lambda s: ledger.cancel(
        s, programme, operation_id=operation_id, idempotency_key=f"api/{body.idempotency_key}",
        source=source, reason=body.reason))
    await _announce(request, result, programme)
    return result


@router.post("/orders/{order_id}/refund", response_model=list[OperationResult],
             dependencies=WRITE)
async def refund_order(request: Request, body: RefundIn,
                       order_id: Annotated[str, Path(min_length=1, max_length=200,
                                                     pattern=r"^[^\x00]+$")]) -> Any:
    """An order was refunded: its write-offs return, its accruals are reversed."""
    programme = _programme(request)
    source = _source(request).model_copy(update={"order_id": order_id})
    results = await _do(request, lambda s: ledger.refund_order(
        s, programme, order_id=order_id, source=source, reason=body.reason))
    if isinstance(results, list):
        for result in results:
            await _announce(request, result, programme)
    return results


@router.get("/levels", response_model=LevelsOut, dependencies=READ)
def get_levels(request: Request) -> LevelsOut:
    """The programme's levels and their qualification thresholds."""
    programme = _programme(request)
    return LevelsOut(programme=programme.programme,
                     levels=[LevelOut(name=lv.name, threshold=lv.threshold)
                             for lv in programme.levels])


@router.post("/coupon-series", response_model=SeriesSpec, dependencies=WRITE)
async def post_series(request: Request, body: SeriesSpec) -> Any:
    """Declare a coupon or gift card series (a repeat with the same settings is a no-op)."""
    return await _do(request, lambda s: SeriesSpec.model_validate(
        coupons.create_series(s, body), from_attributes=True))


@router.get("/coupon-series/{series_id}", response_model=SeriesSpec, dependencies=READ)
async def get_series(request: Request, series_id: Annotated[
        str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]) -> Any:
    """A series' settings."""
    return await _do(request, lambda s: SeriesSpec.model_validate(
        coupons.get_series(s, series_id), from_attributes=True))


@router.post("/coupons", response_model=CouponView, dependencies=WRITE)
async def issue_coupon(request: Request, body: IssueIn) -> Any:
    """Issue a unique code of a series, to a customer (any identifier) or unaddressed."""
    _usable(body.identifier, ["body", "identifier", "value"])
    return await _do(request, lambda s: coupons.issue(
        s, series_id=body.series, idempotency_key=f"api/{body.idempotency_key}",
        customer_id=resolve(s, body.identifier).id if body.identifier else None))


@router.get("/coupons/{code}", response_model=CouponView, dependencies=READ)
async def get_coupon(request: Request, code: Code) -> Any:
    """A code's state: pending, active, used, expired or revoked."""
    return await _do(request, lambda s: coupons.find(s, code))


@router.post("/coupons/{code}/redeem", response_model=CouponView, dependencies=WRITE)
async def redeem_coupon(request: Request, code: Code, body: RedeemIn) -> Any:
    """Use a code once (of two concurrent redemptions one wins); 409 when it cannot be."""
    return await _do(request, lambda s: coupons.redeem(
        s, code=code, idempotency_key=f"api/{body.idempotency_key}", amount=body.amount,
        order_id=body.order_id))


@router.post("/coupons/{code}/revoke", response_model=CouponView, dependencies=WRITE)
async def revoke_coupon(request: Request, code: Code) -> Any:
    """Revoke a code for good."""
    return await _do(request, lambda s: coupons.revoke(s, code))


@router.get("/cards/{token}", response_model=CardOut)
async def get_card(request: Request, token: Annotated[
        str, Path(min_length=3, max_length=600, pattern=r"^[A-Za-z0-9_.-]+$")]) -> Any:
    """The wallet card behind `customer.card_link`; the signed token is the credential."""
    secret = request.app.state.settings.loyalty.card_link_secret.get_secret_value()
    customer_id = verify_card_token(token, secret)
    if customer_id is None:
        return JSONResponse(status_code=404, content={"detail": "no card for this link"})
    programme = _programme(request)
    balance = await _do(request, lambda s: ledger.balance(s, programme, customer_id))
    if not isinstance(balance, Balance):
        return balance
    return CardOut(customer_id=customer_id, balance=balance.bonus.balance,
                   pending=balance.bonus.pending, level=balance.level, as_of=balance.as_of)
