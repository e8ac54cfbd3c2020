"""Great Expectations 1.x validation of the published tables.

Public API: :func:`validate` (suites ``raw_events`` (alias ``events``), ``samples``,
``importance_scores``), :class:`ValidationFailed`. Suites are in
:mod:`sie.validate.suites`; results land under ``validation/<suite>/ds=D/``.
"""

from sie.validate.run import ValidationFailed, validate
from sie.validate.suites import SUITE_TABLES

SUITES = tuple(SUITE_TABLES)

__all__ = ["SUITES", "ValidationFailed", "validate"]
