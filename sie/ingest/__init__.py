"""Spark ingest of raw UBI logs: events, queries, quarantine, samples, reconciliation.

Public API: :func:`ingest_day`, :class:`ReconciliationError`, the reason codes in
:mod:`sie.ingest.reasons`. Rules: docs/INGEST.md.
"""

from sie.ingest.job import ReconciliationError, ingest_day
from sie.ingest.reasons import REASONS

__all__ = ["REASONS", "ReconciliationError", "ingest_day"]
