from __future__ import annotations

import click

from hub.config import Settings


@click.group("db")
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def db_upgrade(revision: str) -> None:
    """Apply migrations to ORDERHUB_DATABASE_URL (default: SQLite under ./.orderhub/)."""
    from hub.store.migrate import upgrade  # alembic: imported by this command only (0.15 s of every CLI start)

    url = Settings().effective_database_url()
    upgrade(url, revision)
    click.echo(f"database at {_safe(url)} is at {revision}")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


COMMANDS = [db]
