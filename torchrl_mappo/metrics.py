"""Where each iteration's metrics row goes: ``metrics.csv`` in the run directory."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping


class CSVMetrics:
    """Append one row per iteration to a CSV file, flushed at once.

    The columns are fixed by the first row (every iteration reports the same
    metrics); a later row with a new metric is an error, not a silent drop.
    """

    def __init__(self, path: str | Path, resume_after: int | None = None) -> None:
        self.path = Path(path)
        self._columns: list[str] | None = None
        if resume_after is not None and self.path.is_file():
            # Continue a run: keep the header and the rows up to its checkpoint
            # (rows written after it, before a crash, are redone).
            with self.path.open(newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                rows = [r for r in reader if r and int(float(r[0])) <= resume_after]
            if header:
                self._columns = header
                with self.path.open("w", newline="") as f:
                    writer = csv.writer(f)
                    writer.writerow(header)
                    writer.writerows(rows)

    def __call__(self, row: Mapping[str, Any]) -> None:
        if self._columns is None:
            self._columns = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self._columns)
        extra = set(row) - set(self._columns)
        if extra:
            raise ValueError(f"metrics row has columns not in {self.path}: {sorted(extra)}")
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c)) for c in self._columns])


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` as floats (empty cells become NaN)."""
    with Path(path).open(newline="") as f:
        return [
            {k: (float(v) if v != "" else float("nan")) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]
