"""Returns and refunds."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from hub.model._common import Model
from hub.model._money import Money


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"
    DISPOSITIONED = "dispositioned"
    REFUNDED = "refunded"
    CLOSED = "closed"


class Condition(StrEnum):
    NEW = "new"
    OPENED = "opened"
    DAMAGED = "damaged"
    DEFECTIVE = "defective"
    MISSING = "missing"


class Disposition(StrEnum):
    RESTOCK = "restock"
    REFURBISH = "refurbish"
    DISPOSE = "dispose"
    RETURN_TO_VENDOR = "return_to_vendor"


class ReturnLine(Model):
    sku: str = Field(description="empty only in a channel message that names the line by external_line_id")
    quantity: int = Field(gt=0)
    reason: str | None = None
    line_no: int | None = None
    condition: Condition | None = None
    received_quantity: int | None = None
    disposition: Disposition | None = None
    location: str | None = None
    external_line_id: str | None = Field(default=None, description="the channel's id of the order line returned")


class Return(Model):
    id: str = Field(pattern=r"^ret_[0-9A-Z]{26}$")
    order_id: str
    external_id: str | None = None
    status: ReturnStatus = ReturnStatus.REQUESTED
    lines: list[ReturnLine] = Field(min_length=1)
    flags: list[str] = Field(default_factory=list, description="fraud signals that require ops approval")
    decision_reason: str | None = None
    approved_by: str | None = Field(default=None, description="who approved a flagged return")
    requested_at: datetime
    updated_at: datetime | None = None


class RefundLine(Model):
    line_no: int | None = None
    sku: str | None = None
    quantity: int = 0
    amount: Money
    tax: Money | None = None


class Refund(Model):
    id: str = Field(pattern=r"^ref_[0-9A-Z]{26}$")
    order_id: str
    return_id: str | None = None
    external_id: str | None = None
    amount: Money
    lines: list[RefundLine] = Field(default_factory=list)
    shipping: Money | None = None
    tax: Money | None = None
    restocking_fee: Money | None = None
    reason: str | None = None
    fx_rate: Decimal | None = Field(default=None, description="rate used when the ERP books another currency")
    booked_amount: Money | None = Field(default=None, description="the amount in the ERP's currency, at fx_rate")
    return_shipping_fee: Money | None = Field(
        default=None, description="return label cost kept when the customer pays it"
    )
    created_at: datetime
