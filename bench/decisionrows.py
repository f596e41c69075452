"""The rows of the routing decision cost (bench.decisions): per pool size, the targets (the
reserve at the largest size within 1.5x of the smallest, and within 50 us), pacing, and the
Redis Functions figure against EVALSHA on the same pools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.pools import CONCURRENCY
from bench.report import Report, Row

MAX_FOREIGN_SHARE = 0.01


def _row(
    metric: str,
    value: float,
    unit: str,
    *,
    mjgate: float | None = None,
    reference: float | None = None,
    **more: Any,
) -> Row:
    """One row of the part `redis`."""
    return Row(part="redis", metric=metric, mjgate=mjgate, reference=reference, value=value,
               unit=unit, **more)  # fmt: skip


def rows(
    report: Report,
    results: Sequence[dict[str, Any]],
    paced: Sequence[dict[str, Any]],
    gapless: dict[str, Any],
    met: dict[str, Any],
) -> None:
    """`results`: unpaced pools by size; `paced`: the smallest and largest, paced, gaps on;
    `gapless`: the largest, paced, gaps 0; `met`: the largest, paced, every decision meeting
    an account in its gap."""
    for script in ("reserve", "settle"):
        for result in results:
            figure = result[f"{script}_usec"]
            metric = f"{script}, {result['accounts']:,} accounts"
            note = _foreign_note(result, script)
            report.add(_row(metric, figure, "us", mjgate=figure, note=note))
    small, large = results[0], results[-1]
    _scaling_rows(report, "reserve", small, large)
    note = f"{large['accounts_per_second']:,} apply_account/s, {CONCURRENCY} in flight"
    report.add(_row(f"load {large['accounts']:,} accounts", large["load_seconds"], "s", note=note))
    _paced_rows(report, paced)
    figure = gapless["reserve_usec"]
    metric = f"paced reserve at {gapless['accounts']:,} accounts, gaps 0"
    note = "every pacing rule but the gap: what gaps cost is the difference"
    report.add(_row(metric, figure, "us", mjgate=figure, note=note))
    figure = met["reserve_usec"]
    metric = f"paced reserve at {met['accounts']:,} accounts, every decision meets a gap"
    note = "most_fast_left, 1-2 s gaps: one account held and one gap ended per decision"
    report.add(_row(metric, figure, "us", mjgate=figure, note=note))
    for label, result in (("reserve", large), ("paced reserve", paced[-1])):
        _reference_row(report, label, result)


def _reference_row(report: Report, label: str, result: dict[str, Any]) -> None:
    """The reserve with the scripts called as Redis Functions against EVALSHA, same pool."""
    mine, theirs = result["reserve_usec"], result["evalsha_reserve_usec"]
    metric = f"{label} at {result['accounts']:,}: functions / EVALSHA"
    report.add(_row(metric, mine / theirs, "x", mjgate=mine, reference=theirs, side_unit="us"))


def _paced_rows(report: Report, paced: Sequence[dict[str, Any]]) -> None:
    small, large = paced[0], paced[-1]
    metric = f"paced reserve, {small['accounts']:,} / {large['accounts']:,} accounts"
    note = f"paced reserve {small['reserve_usec']} / {large['reserve_usec']} us"
    report.add(_row(metric, large["reserve_usec"], "us", note=note))
    _scaling_rows(report, "paced reserve", small, large)


def _scaling_rows(report: Report, label: str, small: dict[str, Any], large: dict[str, Any]) -> None:
    """The targets: the reserve at the largest pool size within 1.5x of the smallest, and
    within 50 us."""
    big, little = large["reserve_usec"], small["reserve_usec"]
    ratio = big / little
    metric = f"{label} at {large['accounts']:,} vs {small['accounts']:,} accounts"
    report.add(_row(metric, ratio, "x", mjgate=big, reference=little, target="<= 1.5x",
                    passed=ratio <= 1.5, side_unit="us"))  # fmt: skip
    report.add(_row(f"{label} at {large['accounts']:,} accounts", big, "us", mjgate=big,
                    target="<= 50 us", passed=big <= 50))  # fmt: skip


def _foreign_note(result: dict[str, Any], what: str) -> str:
    foreign = int(result[f"{what}_foreign_calls"])
    if foreign <= int(result["tasks"]) * MAX_FOREIGN_SHARE:
        return ""
    return f"{foreign} EVALSHA calls from other clients in the window"
