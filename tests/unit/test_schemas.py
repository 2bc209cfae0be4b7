import json
from pathlib import Path

from hub import schemas
from hub.model import EVENT_TYPES

COMMITTED = Path(__file__).resolve().parents[2] / "mappings" / "schemas"


def test_committed_schemas_match_the_code() -> None:
    """Fails when the model changed and `orderhub schemas export mappings/schemas` was not re-run."""
    expected = schemas.all_schemas()
    for rel, schema in expected.items():
        f = COMMITTED / rel
        assert f.exists(), f"{rel} missing: run `orderhub schemas export mappings/schemas`"
        assert json.loads(f.read_text()) == schema, f"{rel} drifted: run `orderhub schemas export mappings/schemas`"
    on_disk = {str(p.relative_to(COMMITTED)) for p in COMMITTED.rglob("*.json")}
    assert on_disk == set(expected), "stale schema files under mappings/schemas"


def test_every_event_type_has_a_schema() -> None:
    names = set(schemas.all_schemas())
    assert {f"events/{t}.json" for t in EVENT_TYPES} <= names
    assert "order.created" in EVENT_TYPES and "sync.failed" in EVENT_TYPES
