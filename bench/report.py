"""What a run reports: rows (metric, mjgate, reference, value, target, pass), the printed
table, and `bench/results.json` with the machine it ran on."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One figure. `value` is what the target applies to (a ratio, a difference, a size);
    `passed` None means "no target" (an informational figure)."""

    part: str
    metric: str
    mjgate: float | None
    reference: float | None
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    note: str = ""
    side_unit: str = ""  # of the mjgate and reference columns, when not `unit` (ratios)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)


def _number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    digits = 0 if abs(value) >= 100 else 2 if abs(value) >= 1 else 3
    return f"{value:,.{digits}f} {unit}".rstrip()


def _verdict(row: Row) -> str:
    return "-" if row.passed is None else "pass" if row.passed else "FAIL"


def table(rows: Sequence[Row]) -> str:
    header = ("part", "metric", "mjgate", "reference", "value", "target", "result")
    lines = [
        (
            row.part,
            row.metric,
            _number(row.mjgate, _side_unit(row)),
            _number(row.reference, _side_unit(row)),
            _number(row.value, row.unit),
            row.target,
            _verdict(row),
        )
        for row in rows
    ]
    widths = [
        max(len(str(item)) for item in column) for column in zip(header, *lines, strict=False)
    ]
    out = [
        "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    notes: list[str] = []
    for row in rows:
        note = f"  [{row.part}] {row.note}"
        if row.note and note not in notes:  # a note shared by several rows is printed once
            notes.append(note)
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def _side_unit(row: Row) -> str:
    return row.side_unit or ("" if row.unit == "x" else row.unit)


def _run(args: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() or done.stderr.strip()


def machine(redis_info: dict[str, Any]) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_version": redis_info.get("redis_version"),
        "redis_mode": redis_info.get("redis_mode"),
        "wrk": _run(["wrk", "-v"]).splitlines()[0] if _run(["wrk", "-v"]) else None,
        "commit": _run(["git", "rev-parse", "--short", "HEAD"]) or None,
    }


def write(
    path: Path, report: Report, *, machine_info: dict[str, Any], settings: dict[str, Any]
) -> None:
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info,
        "settings": settings,
        "rows": [asdict(row) for row in report.rows],
        "details": report.details,
        "errors": report.errors,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
