"""The day being ingested and the event times accepted for it, computed once per run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sie.ds import Ds


@dataclass(frozen=True)
class DayWindow:
    """A day ``ds`` and its accepted event times ``[start, end)``: the UTC day widened by the lateness."""

    ds: Ds
    lateness_hours: float
    start: datetime
    end: datetime

    @classmethod
    def of(cls, ds: str | Ds, lateness_hours: float) -> DayWindow:
        ds = Ds(ds)
        midnight = datetime.combine(ds.date, time.min, tzinfo=UTC)
        late = timedelta(hours=lateness_hours)
        return cls(ds, lateness_hours, midnight - late, midnight + timedelta(days=1) + late)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return self.start, self.end

    @property
    def accepts_late_arrivals(self) -> bool:
        """Whether records of the previous day's requests can land under this day."""
        return self.lateness_hours > 0

    def describe(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"

    def days_before(self, n_days: int) -> list[Ds]:
        """The ``n_days`` days before ``ds`` (not including it), oldest first."""
        return [self.ds.shift(-k) for k in range(n_days, 0, -1)]
