"""Small shared types: Address, Customer."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field


@lru_cache(maxsize=512)
def _country(code: str) -> str | None:
    c = pycountry.countries.get(alpha_2=code.upper())
    return c.alpha_2 if c else None


def _check_country(v: str) -> str:
    code = _country(v) if isinstance(v, str) and len(v) == 2 else None
    if code is None:
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {v!r}")
    return code


CountryCode = Annotated[str, AfterValidator(_check_country)]


class Model(BaseModel):
    """Base of canonical models: unknown keys are refused, so typos surface."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (Decimals as strings, datetimes ISO-8601)."""
        return self.model_dump(mode="json", exclude_none=False)


class Address(Model):
    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = Field(default=None, description="state/province code or name")
    postal_code: str | None = None
    country: CountryCode
    phone: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class Customer(Model):
    external_id: str | None = None
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    tags: list[str] = Field(default_factory=list)
