"""What the partner webhooks API takes and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.model import EVENT_TYPES

ALL_EVENTS = "*"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointIn(_Out):
    """``POST /api/v1/webhook-endpoints``."""

    url: str = Field(max_length=2048, description="http(s) URL of the partner's receiver")
    events: list[str] = Field(min_length=1, description="event types to receive, or ['*'] for all")
    connection: str | None = Field(default=None, max_length=64, description="only events of this connection")
    description: str | None = Field(default=None, max_length=500)

    @field_validator("events")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [e for e in v if e != ALL_EVENTS and e not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s) {unknown}; known: {sorted(EVENT_TYPES)} or '*'")
        return sorted(set(v))


class Endpoint(_Out):
    """A partner webhook endpoint (never with its secret)."""

    id: str
    url: str
    events: list[str]
    connection: str | None = None
    description: str | None = None
    status: str = Field(description="active, disabled (failing too long or 410 Gone) or deleted")
    failing_since: datetime | None = None
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="until then deliveries carry a signature with the previous secret too"
    )
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(Endpoint):
    """The answer to create and rotate-secret: the only place the ``whsec_`` secret is shown."""

    secret: str


class ReplayIn(_Out):
    """``POST /api/v1/webhook-endpoints/{id}/replay``."""

    since: datetime = Field(description="replay failed deliveries (and send missed events) created since then")

    @field_validator("since")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("since needs a timezone, e.g. 2026-01-01T00:00:00Z")
        return v


class ReplayResult(_Out):
    endpoint_id: str
    replayed: int = Field(description="failed deliveries queued again")
    backfilled: int = Field(description="events never sent to the endpoint (e.g. while disabled) now queued")
    reenabled: bool = Field(description="the endpoint was disabled and is active again")


class Attempt(_Out):
    at: datetime
    status_code: int | None = None
    latency_ms: int | None = None
    response_snippet: str | None = None
    error: str | None = None


class Delivery(_Out):
    id: str
    endpoint_id: str
    event_id: str = Field(description="also the webhook-id header")
    event_type: str
    object_id: str | None = None
    status: str = Field(description="pending, delivering, delivered or failed")
    attempts: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    created_at: datetime
    updated_at: datetime


class DeliveryDetail(Delivery):
    log: list[Attempt] = Field(default_factory=list, description="every attempt, oldest first")
