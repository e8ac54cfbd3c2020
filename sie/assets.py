"""The Airflow Asset of every published table, by URI (strings only: the library never imports Airflow).

A task that publishes a table declares ``Asset(uri(table))`` as an outlet; a DAG scheduled on
that Asset runs after the table changed. ``models`` (the trained checkpoints) is an Asset too.
"""

from __future__ import annotations

from sie.schemas import TABLES

SCHEME = "sie"
MODELS = "models"


def uri(name: str) -> str:
    """``sie://warehouse/<table>`` for a table of :data:`sie.schemas.TABLES` (or ``models``)."""
    if name not in TABLES and name != MODELS:
        raise KeyError(f"no table {name!r}; known: {sorted(TABLES)} and {MODELS!r}")
    return f"{SCHEME}://warehouse/{name}"


def uris() -> dict[str, str]:
    """Every Asset URI by name."""
    return {name: uri(name) for name in [*TABLES, MODELS]}
