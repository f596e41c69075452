"""The rows of the routing decision cost (bench.decisions): per pool size, the targets (the
reserve at the largest size within 1.5x of the smallest, and within 50 us), pacing, and the
Redis Functions figure against EVALSHA on the same pools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.pools import CONCURRENCY
from bench.report import Report, Row

MAX_FOREIGN_SHARE = 0.01


def rows(
    report: Report,
    results: Sequence[dict[str, Any]],
    paced: Sequence[dict[str, Any]],
    gapless: dict[str, Any],
) -> None:
    """`results`: unpaced pools by size; `paced`: the smallest and largest, paced, gaps on;
    `gapless`: the largest, paced, gaps 0."""
    for script in ("reserve", "settle"):
        for result in results:
            figure = result[f"{script}_usec"]
            report.add(
                Row(
                    part="redis",
                    metric=f"{script}, {result['accounts']:,} accounts",
                    mjgate=figure,
                    reference=None,
                    value=figure,
                    unit="us",
                    note=_foreign_note(result, script),
                )
            )
    small, large = results[0], results[-1]
    _scaling_rows(report, "reserve", small, large)
    report.add(
        Row(
            part="redis",
            metric=f"load {large['accounts']:,} accounts",
            mjgate=None,
            reference=None,
            value=large["load_seconds"],
            unit="s",
            note=f"{large['accounts_per_second']:,} apply_account/s, {CONCURRENCY} in flight",
        )
    )
    _paced_rows(report, paced)
    figure = gapless["reserve_usec"]
    report.add(
        Row(
            part="redis",
            metric=f"paced reserve at {gapless['accounts']:,} accounts, gaps 0",
            mjgate=figure,
            reference=None,
            value=figure,
            unit="us",
            note="every pacing rule but the gap: what gaps cost is the difference",
        )
    )
    for label, result in (("reserve", large), ("paced reserve", paced[-1])):
        _reference_row(report, label, result)


def _reference_row(report: Report, label: str, result: dict[str, Any]) -> None:
    """The reserve with the scripts called as Redis Functions against EVALSHA, same pool."""
    ratio = result["reserve_usec"] / result["evalsha_reserve_usec"]
    report.add(
        Row(
            part="redis",
            metric=f"{label} at {result['accounts']:,}: functions / EVALSHA",
            mjgate=result["reserve_usec"],
            reference=result["evalsha_reserve_usec"],
            value=ratio,
            unit="x",
            side_unit="us",
        )
    )


def _paced_rows(report: Report, paced: Sequence[dict[str, Any]]) -> None:
    small, large = paced[0], paced[-1]
    report.add(
        Row(
            part="redis",
            metric=f"paced reserve, {small['accounts']:,} / {large['accounts']:,} accounts",
            mjgate=None,
            reference=None,
            value=large["reserve_usec"],
            unit="us",
            note=f"paced reserve {small['reserve_usec']} / {large['reserve_usec']} us",
        )
    )
    _scaling_rows(report, "paced reserve", small, large)


def _scaling_rows(report: Report, label: str, small: dict[str, Any], large: dict[str, Any]) -> None:
    """The targets: the reserve at the largest pool size within 1.5x of the smallest, and
    within 50 us."""
    ratio = large["reserve_usec"] / small["reserve_usec"]
    report.add(
        Row(
            part="redis",
            metric=f"{label} at {large['accounts']:,} vs {small['accounts']:,} accounts",
            mjgate=large["reserve_usec"],
            reference=small["reserve_usec"],
            value=ratio,
            unit="x",
            target="<= 1.5x",
            passed=ratio <= 1.5,
            side_unit="us",
        )
    )
    report.add(
        Row(
            part="redis",
            metric=f"{label} at {large['accounts']:,} accounts",
            mjgate=large["reserve_usec"],
            reference=None,
            value=large["reserve_usec"],
            unit="us",
            target="<= 50 us",
            passed=large["reserve_usec"] <= 50,
        )
    )


def _foreign_note(result: dict[str, Any], what: str) -> str:
    foreign = int(result[f"{what}_foreign_calls"])
    if foreign <= int(result["tasks"]) * MAX_FOREIGN_SHARE:
        return ""
    return f"{foreign} EVALSHA calls from other clients in the window"
