"""Configuration: environment (pydantic-settings) and ``orderhub.toml`` (tomllib).

A bad config raises :class:`~hub.errors.ConfigError` listing every problem with the
file, key, value and reason; the CLI prints it without a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.errors import ConfigError
from hub.model import Location

DEFAULT_HOME = Path(".orderhub")


class Settings(BaseSettings):
    """Process settings from the environment (``ORDERHUB_*``)."""

    model_config = SettingsConfigDict(env_prefix="ORDERHUB_", extra="ignore")

    database_url: str = Field(default="", description="SQLAlchemy async URL; default: SQLite under ./.orderhub/")
    redis_url: str = Field(default="", description="default: a private redis-server on loopback")
    config: Path = Field(default=Path("orderhub.toml"))
    redis_prefix: str = Field(default="orderhub", description="prefix of every Redis key and queue name")
    log_level: str = "INFO"
    plugins: str = Field(
        default="", description="extra plugin modules, comma-separated (local plugins without packaging)"
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        from hub.redis_urls import parse_sentinel

        parse_sentinel(v)  # a malformed sentinel URL is refused at start, with an example
        return v

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        DEFAULT_HOME.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(DEFAULT_HOME / 'orderhub.db').resolve()}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConnectionConfig(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    connector: str
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    max_concurrency: int | None = Field(default=None, ge=1)
    rate_per_second: float | None = Field(default=None, gt=0)
    mappings: dict[str, str] = Field(default_factory=dict, description="object -> override mapping file")


class Substitution(_Strict):
    sku: str
    substitutes: list[str]


class AllocationConfig(_Strict):
    strategy: Literal["priority", "nearest", "lowest_cost", "fewest_shipments"] = "priority"
    split_policy: Literal["ship_complete", "allow", "max_splits"] = "allow"
    max_splits: int = Field(default=2, ge=1)
    channel_buffer: int = Field(default=0, ge=0, description="units held back from every channel's ATP")
    cost_per_km: Decimal = Decimal("0.001")
    backorder_priority: Literal["oldest", "value"] = "oldest"
    backorder_max_age_days: int | None = Field(default=None, ge=1)
    backorder_expired_action: Literal["flag", "cancel"] = "flag"
    substitutions: list[Substitution] = Field(default_factory=list)
    fraud_max_value: Decimal = Decimal("1000")
    fraud_velocity_per_email_per_day: int = 5
    fraud_block_emails: list[str] = Field(default_factory=list)
    hold_unpaid: bool = True


class ReturnsConfig(_Strict):
    window_days: int = Field(default=30, ge=0)
    non_returnable_skus: list[str] = Field(default_factory=list)
    non_returnable_tags: list[str] = Field(default_factory=list)
    auto_approve_reasons: list[str] = Field(default_factory=lambda: ["defective", "wrong_item", "damaged"])
    restocking_fee_percent: dict[str, Decimal] = Field(default_factory=dict, description="reason -> percent")
    return_shipping_paid_by: Literal["merchant", "customer"] = "merchant"
    refund_shipping: bool = False
    flag_refund_over: Decimal = Decimal("500")
    flag_return_rate_over: Decimal = Decimal("0.5")
    flag_returns_per_customer: int = 5
    flag_weight_tolerance_percent: Decimal = Decimal("10")


class ApiToken(_Strict):
    name: str
    scopes: list[Literal["read", "ops", "admin"]]
    token: SecretStr

    @model_validator(mode="after")
    def _long_enough(self) -> ApiToken:
        if len(self.token.get_secret_value()) < 16:
            raise ValueError("token must be at least 16 characters")
        return self


class WebhooksConfig(_Strict):
    retry_schedule: list[int] = Field(default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000])
    allow_private_targets: bool = False
    disable_after_days: int = 5
    timeout_seconds: float = 15.0
    max_concurrency_per_endpoint: int = 4


class QueueConfig(_Strict):
    max_depth: int = Field(default=50_000, ge=1, description="above this, direct order capture answers 429")
    job_timeout_seconds: int = 300
    max_tries: int = Field(default=12, ge=1, description="attempts of an outbound sync before it is dead-lettered")
    lease_seconds: int = Field(default=60, ge=5)
    inventory_push_delay_seconds: float = Field(
        default=5.0, ge=0, description="stock changes of a SKU within this window make one push to each channel"
    )
    inbox_gather_ms: float = Field(
        default=50.0,
        ge=0,
        le=1000,
        description="while the inbox keeps up, inbound items are handed to the workers in windows of this many ms, "
        "one claim and one transaction a window (an item waits up to this long first; 0: at once)",
    )
    intake_lag_target_ms: float = Field(
        default=50.0,
        ge=0,
        description="while inbound items wait longer than this, workers give them priority over outbound sync jobs",
    )
    outbound_max_lag_seconds: float = Field(
        default=30.0,
        ge=0,
        description="a due outbound sync job never waits longer than this for the inbox's sake (0: no priority)",
    )
    submit_inline: bool = Field(
        default=True,
        description="a worker that allocates orders sends their fulfilment requests to the 3PL straight after "
        "the commit, while the inbox is not behind (false: always through the job queue)",
    )


class StoreConfig(_Strict):
    maintenance: Literal["auto", "always", "off"] = Field(
        default="auto",
        description="VACUUM/ANALYZE of the hub's tables by the workers: auto = only while the server's autovacuum is off",
    )
    maintenance_interval_seconds: float = Field(default=5.0, gt=0)


class HubConfig(_Strict):
    """The validated ``orderhub.toml``."""

    locations: list[Location] = Field(default_factory=list)
    connections: list[ConnectionConfig] = Field(default_factory=list)
    allocation: AllocationConfig = Field(default_factory=AllocationConfig)
    returns: ReturnsConfig = Field(default_factory=ReturnsConfig)
    api_tokens: list[ApiToken] = Field(default_factory=list)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)

    @model_validator(mode="after")
    def _unique_ids(self) -> HubConfig:
        for what, ids in (
            ("locations", [x.id for x in self.locations]),
            ("connections", [c.id for c in self.connections]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {what} id(s): {', '.join(dupes)}")
        conn_ids = {c.id for c in self.connections}
        for loc in self.locations:
            if loc.fulfilled_by and loc.fulfilled_by not in conn_ids:
                raise ValueError(f"location {loc.id!r} is fulfilled_by unknown connection {loc.fulfilled_by!r}")
        return self

    def connection(self, connection_id: str) -> ConnectionConfig:
        for c in self.connections:
            if c.id == connection_id:
                return c
        raise KeyError(connection_id)

    def location(self, location_id: str) -> Location:
        for loc in self.locations:
            if loc.id == location_id:
                return loc
        raise KeyError(location_id)


def _resolve_env(node: Any, path: str, problems: list[tuple[str, str, str]]) -> Any:
    """Replace every ``"env:NAME"`` string with the environment variable's value."""
    if isinstance(node, dict):
        return {k: _resolve_env(v, f"{path}.{k}" if path else k, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("env:"):
        name = node[4:]
        if name not in os.environ:
            problems.append((path, node, f"environment variable {name} is not set"))
            return ""
        return os.environ[name]
    return node


def _loc(err_loc: tuple[Any, ...]) -> str:
    out = ""
    for part in err_loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


SettingsValidator = Callable[[HubConfig], list[tuple[str, str, str]]]


def parse_config(
    raw: dict[str, Any], source: str = "orderhub.toml", validate_connections: SettingsValidator | None = None
) -> HubConfig:
    """Validate a parsed TOML document; raise ConfigError listing every problem."""
    problems: list[tuple[str, str, str]] = []
    resolved = _resolve_env(raw, "", problems)
    cfg: HubConfig | None = None
    try:
        cfg = HubConfig.model_validate(resolved)
    except ValidationError as exc:
        for e in exc.errors():
            where = f"{source}: {_loc(e['loc'])}" if e["loc"] else source
            value = "" if "token" in where or "secret" in where else repr(e.get("input"))[:80]
            if isinstance(e.get("input"), dict):
                value = ""
            problems.append((where, value, e["msg"]))
    if cfg is not None and validate_connections is not None:
        problems.extend((f"{source}: {w}", v, why) for w, v, why in validate_connections(cfg))
    if problems:
        raise ConfigError(problems)
    assert cfg is not None
    return cfg


def load_config(path: Path | str | None = None, validate_connections: SettingsValidator | None = None) -> HubConfig:
    """Read and validate ``orderhub.toml``; a missing default file gives the empty config."""
    p = Path(path) if path else Settings().config
    if not p.exists():
        if path is not None or os.environ.get("ORDERHUB_CONFIG"):
            raise ConfigError([(str(p), "", "file not found")])
        return parse_config({}, str(p), validate_connections)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(str(p), "", f"not valid TOML: {exc}")]) from None
    return parse_config(raw, str(p), validate_connections)
