from tests.sync.conftest import hub, router  # noqa: F401
