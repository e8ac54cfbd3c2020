"""The processing day: one value type, validated where it enters (DAG, CLI, job).

``Ds`` is a ``str`` subclass holding a strict ``YYYY-MM-DD`` day, so it works as a
partition value, a path part and a format argument unchanged, while its constructor
is the only place a day is parsed.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Ds(str):
    """A validated day ``YYYY-MM-DD``; ``Ds(x)`` accepts a ``Ds``, a ``date``/``datetime`` or such a string."""

    def __new__(cls, value: str | date | Ds) -> Ds:
        if isinstance(value, Ds):
            return value
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return super().__new__(cls, value.isoformat())
        text = str(value).strip()
        if not _ISO_DAY.match(text):
            raise ValueError(f"ds must be a day YYYY-MM-DD, got {value!r}")
        try:
            date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"ds must be a real calendar day YYYY-MM-DD, got {value!r}") from exc
        return super().__new__(cls, text)

    @property
    def date(self) -> date:
        return date.fromisoformat(self)

    def shift(self, days: int) -> Ds:
        return Ds(self.date + timedelta(days=days))

    def window(self, n_days: int) -> list[Ds]:
        """The ``n_days`` days ending at (and including) this one, oldest first."""
        if n_days < 1:
            raise ValueError(f"a window needs at least one day, got {n_days}")
        return [self.shift(-k) for k in range(n_days - 1, -1, -1)]

    @classmethod
    def span(cls, start: str | date | Ds, days: int) -> list[Ds]:
        """``days`` consecutive days starting at ``start``."""
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        first = cls(start)
        return [first.shift(k) for k in range(days)]

    @classmethod
    def resolve(cls, param: str | None, data_interval_start: datetime | date | str | None) -> Ds:
        """A DAG run's day: the ``ds`` param when given, else the data interval's start date."""
        if param:
            return cls(param)
        if data_interval_start is None:
            raise ValueError('no ds param and no data interval: trigger with -c \'{"ds": "YYYY-MM-DD"}\'')
        if isinstance(data_interval_start, str):
            return cls(data_interval_start[:10])
        return cls(data_interval_start)
