"""Great Expectations 1.x validation of the published tables.

Public API: :func:`validate` (suites ``raw_events`` (alias ``events``), ``samples``,
``importance_scores``), :class:`ValidationFailed`, and the gate: :func:`failed_suites` /
:func:`forget_results` over :data:`INGEST_SUITES`. Suites are in
:mod:`sie.validate.suites`; results land under ``validation/<suite>/ds=D/``.
"""

from sie.validate.run import ValidationFailed, failed_suites, forget_results, validate
from sie.validate.suites import INGEST_SUITES, SUITE_TABLES

SUITES = tuple(SUITE_TABLES)

__all__ = ["INGEST_SUITES", "SUITES", "ValidationFailed", "failed_suites", "forget_results", "validate"]
