"""HTTP API: the delivery log for a marketplace's operators, plus health and metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, overload

from cairn_chassis.auth import CurrentPrincipal, require_role
from cairn_chassis.db import Database
from cairn_chassis.errors import Problem
from cairn_chassis.http import Offset, create_app
from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cairn_notifications import __version__
from cairn_notifications.adapters import repository
from cairn_notifications.adapters.tables import EmailDelivery
from cairn_notifications.config import MIGRATIONS, Settings
from cairn_notifications.service.requeue import requeue

Status = Literal["pending", "sending", "delivered", "failed"]


@overload
def _utc(value: datetime) -> datetime: ...


@overload
def _utc(value: None) -> None: ...


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class DeliveryPublic(BaseModel):
    """One email in the delivery log."""

    id: str
    status: Status
    template: str
    source_event_id: str
    source_event_type: str
    contract_id: str | None
    milestone_id: str | None
    recipient_email: str
    recipient_name: str
    recipient_role: str
    subject: str
    message_id: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None

    @classmethod
    def of(cls, row: EmailDelivery) -> DeliveryPublic:
        """The public view of a delivery row."""
        return cls(
            id=row.id,
            status=row.status,
            template=row.template,
            source_event_id=row.source_event_id,
            source_event_type=row.source_event_type,
            contract_id=row.contract_id,
            milestone_id=row.milestone_id,
            recipient_email=row.recipient_email,
            recipient_name=row.recipient_name,
            recipient_role=row.recipient_role,
            subject=row.subject,
            message_id=row.message_id,
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt_at=_utc(row.next_attempt_at) if row.status == "pending" else None,
            created_at=_utc(row.created_at),
            delivered_at=_utc(row.delivered_at),
            failed_at=_utc(row.failed_at),
        )


class DeliveryList(BaseModel):
    """A page of the delivery log, newest first."""

    items: list[DeliveryPublic]


router = APIRouter(prefix="/v1", tags=["deliveries"])


@router.get(
    "/deliveries",
    summary="The email delivery log of the operator's marketplace",
    response_model=DeliveryList,
)
async def list_deliveries(
    request: Request,
    principal: CurrentPrincipal,
    contract_id: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[Status | None, Query(description="only deliveries in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> DeliveryList:
    """Operators see every email of their own marketplace; ``status=failed`` lists the ones
    that need attention, with the SMTP server's reason."""
    require_role(principal, "operator")
    db: Database = request.app.state.db
    async with db.transaction() as session:
        rows = await repository.list_deliveries(
            session,
            principal.marketplace_id,
            contract_id=contract_id,
            statuses=[status] if status else [],
            limit=limit,
            offset=offset,
        )
    return DeliveryList(items=[DeliveryPublic.of(row) for row in rows])


class RequeueIn(BaseModel):
    """Which of the marketplace's failed emails to send again."""

    model_config = ConfigDict(extra="forbid")

    failed_since: AwareDatetime = Field(
        description="Every failed email of the marketplace that failed at or after this time "
        "(e.g. the start of an SMTP outage)."
    )


class RequeueOut(BaseModel):
    """The emails put back in the queue."""

    items: list[DeliveryPublic]


@router.post(
    "/deliveries/{delivery_id}/requeue",
    summary="Send a failed email again (a new retry window starts)",
    response_model=DeliveryPublic,
)
async def requeue_delivery(
    request: Request,
    principal: CurrentPrincipal,
    delivery_id: Annotated[str, Path(max_length=64)],
) -> DeliveryPublic:
    """Operators only, their own marketplace's emails. Only a ``failed`` email can be
    re-queued (409 ``delivery.not_failed`` otherwise): it keeps its Message-ID, so it still
    reaches its recipient at most once."""
    require_role(principal, "operator")
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    rows = await requeue(
        db, settings, marketplace_id=principal.marketplace_id, delivery_ids=[delivery_id]
    )
    if rows:
        return DeliveryPublic.of(rows[0])
    async with db.transaction() as session:
        row = await session.get(EmailDelivery, delivery_id)
    if row is None or row.marketplace_id != principal.marketplace_id:
        raise Problem(404, "delivery.not_found", "No such email in your marketplace's log.")
    raise Problem(
        409,
        "delivery.not_failed",
        f"Only a failed email can be re-queued; this one is {row.status}.",
    )


@router.post(
    "/deliveries/requeue",
    summary="Send the marketplace's emails that failed since a time again",
    response_model=RequeueOut,
)
async def requeue_deliveries(
    request: Request, principal: CurrentPrincipal, body: RequeueIn
) -> RequeueOut:
    """Operators only: after an outage, every email of their marketplace that failed since
    ``failed_since`` goes back in the queue with a new retry window."""
    require_role(principal, "operator")
    rows = await requeue(
        request.app.state.db,
        request.app.state.settings,
        marketplace_id=principal.marketplace_id,
        failed_since=body.failed_since,
    )
    return RequeueOut(items=[DeliveryPublic.of(row) for row in rows])


def create(settings: Settings, db: Database | None = None) -> FastAPI:
    """The notifications HTTP app."""
    database = db or Database(settings.database_url, pool_size=settings.database_pool_size)
    app = create_app(
        settings,
        database,
        title="Cairn notifications",
        version=__version__,
        description="Branded emails at every step of a contract; the delivery log for operators.",
        routers=[router],
        migrations=MIGRATIONS,
    )

    return app
