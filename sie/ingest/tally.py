"""`Tally`: the classified day's line counts, and what the summary and reconciliation derive from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sie.ingest import reasons as R
from sie.ingest.parse import SOURCES


class Tally:
    """Line counts of the classified day by (source, kind, dest, reason, action_name, late_interaction)."""

    KEYS = ("source", "kind", "dest", "reason", "action_name", "late_interaction")

    def __init__(self, counts: dict[tuple, int]):
        self.counts = counts

    @classmethod
    def of(cls, records) -> Tally:
        return cls(_counts(records, *cls.KEYS))

    def n(self, source=None, kind=None, dest=None, reason=None, action=None) -> int:
        return sum(
            v
            for (s, k, d, r, a, _late), v in self.counts.items()
            if (source is None or s == source)
            and (kind is None or k == kind)
            and (dest is None or d == dest)
            and (reason is None or r == reason)
            and (action is None or a == action)
        )

    def quarantine_reasons(self) -> dict[str, dict[str, int]]:
        reasons: dict[str, dict[str, int]] = {}
        for (s, _k, d, r, _a, _late), v in self.counts.items():
            if d == "quarantine":
                reasons.setdefault(s, {})[r] = reasons.setdefault(s, {}).get(r, 0) + v
        return {s: dict(sorted(r.items())) for s, r in sorted(reasons.items())}

    def accepted_event_actions(self) -> dict[str, int]:
        actions: dict[str, int] = {}
        for (s, _k, d, _r, a, _late), v in self.counts.items():
            if s == "ubi_events" and d == "accepted":
                actions[a] = actions.get(a, 0) + v
        return dict(sorted(actions.items()))

    def late_interactions(self) -> int:
        return sum(v for (_s, _k, d, _r, _a, late), v in self.counts.items() if d == "accepted" and late)

    def expected_rows(self) -> dict[str, int]:
        """Rows each table must get (``samples``: an upper bound, one per accepted impression)."""
        return {
            "events": self.n("ubi_events", "record", "accepted"),
            "queries": self.n("ubi_queries", "record", "accepted"),
            "quarantine": self.n(kind="record", dest="quarantine"),
            "samples": self.n("ubi_events", "record", "accepted", action="impression"),
        }

    def reconciliation_rows(self, run_id: str, files: dict[str, list[Path]]) -> list[dict[str, Any]]:
        """One row per source. Lines count under the source they were routed to, files under their
        folder; a file-level fault is one quarantined record of its folder's source, so the file
        counts come from those records: files = files_read + files_truncated + files_unreadable."""
        rows = []
        for source in SOURCES:
            truncated = self.n(source, "record", "quarantine", R.TRUNCATED_FILE)
            unreadable = self.n(source, "record", "quarantine", R.UNREADABLE_FILE)
            rows.append(
                {
                    "run_id": run_id,
                    "source": source,
                    "raw_records": self.n(source, "record"),
                    "accepted": self.n(source, "record", "accepted"),
                    "quarantined": self.n(source, "record", "quarantine"),
                    "dedup_dropped": self.n(source, "record", "dedup"),
                    "files": len(files.get(source, [])),
                    "files_read": len(files.get(source, [])) - truncated - unreadable,
                    "files_truncated": truncated,
                    "files_unreadable": unreadable,
                    "raw_lines": self.n(source),
                    "blank_lines": self.n(source, "blank"),
                    "bulk_action_lines": self.n(source, "bulk_action"),
                }
            )
        return rows


def _counts(df, *cols) -> dict[tuple, int]:
    return {
        tuple(r[c] for c in cols): int(r["n"])
        for r in df.groupBy(*cols).count().withColumnRenamed("count", "n").collect()
    }
