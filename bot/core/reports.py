"""The branch's coverage report: what it holds, how it is counted, and its CSV and XLSX forms.

Plain Python: the numbers arrive already counted (bot.services.reports does the queries) and
every word arrives through the caller's translator. Counting rules, fixed here once:
- an *application* is one that was sent (any status but draft);
- a *registration* is an application with status `registered`;
- *coverage* is registrations / potential workers, only over villages with a known target;
- *drop-off* counts unfinished drafts by the step they stand at, in the form's order.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.core.form import Form, Stage

Translate = Callable[..., str]

# How many weeks the trend covers, ending with the current one.
TREND_WEEKS = 12


@dataclass(frozen=True)
class AreaLine:
    """One regency or village: applications, registrations, and its target if known."""

    code: str
    name: str
    applications: int = 0
    registered: int = 0
    # Potential informal workers (summed over the villages that have one), None when unknown.
    target: int | None = None
    # Registrations in the villages that have a target: the numerator of coverage.
    covered: int = 0

    @property
    def coverage(self) -> float | None:
        """Registered / potential workers (0..1, may pass 1), None without a target."""
        return self.covered / self.target if self.target else None


@dataclass(frozen=True)
class WeekLine:
    """One week (starting Monday): applications sent and registrations made in it."""

    week: date
    applications: int = 0
    registered: int = 0


@dataclass(frozen=True)
class StepLine:
    """Unfinished drafts standing at one step of the form."""

    step: str
    label: str
    drafts: int


@dataclass(frozen=True)
class Report:
    """Everything the report shows, counted at `made_at`."""

    made_at: datetime
    total: AreaLine
    regencies: tuple[AreaLine, ...]
    villages: tuple[AreaLine, ...]
    weeks: tuple[WeekLine, ...]
    steps: tuple[StepLine, ...]

    @property
    def has_targets(self) -> bool:
        """Whether any village has a target (otherwise there is no coverage to show)."""
        return self.total.target is not None

    def ranked_villages(self) -> list[AreaLine]:
        """Villages with a target by coverage, highest first; the rest by registrations."""
        return sorted(
            self.villages,
            key=lambda v: (
                v.coverage is None,
                -(v.coverage or 0.0),
                -v.registered,
                -v.applications,
                v.name,
            ),
        )


def week_of(day: date) -> date:
    """The Monday that starts the week of `day`."""
    return day - timedelta(days=day.weekday())


def trend(
    sent: Iterable[date], registered: Iterable[date], today: date, weeks: int = TREND_WEEKS
) -> tuple[WeekLine, ...]:
    """Weekly counts over the last `weeks` weeks up to today's; days outside are left out."""
    last = week_of(today)
    starts = [last - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    counts = {start: [0, 0] for start in starts}
    for index, days in enumerate((sent, registered)):
        for day in days:
            week = week_of(day)
            if week in counts:
                counts[week][index] += 1
    return tuple(WeekLine(start, *counts[start]) for start in starts)


def step_order(form: Form) -> list[str]:
    """Where a draft can stand, in the order a person meets them."""
    return [
        Stage.CONSENT.value,
        *(q.key for q in form.questions),
        Stage.SUMMARY.value,
    ]


def drop_off(drafts_by_step: Mapping[str | None, int], form: Form, t: Translate) -> list[StepLine]:
    """Drafts per step in the form's order, every step listed even when nobody stopped there.

    A draft without a step has not answered the consent yet; one choosing what to edit from
    the summary counts as at the summary; steps the form no longer has come last, by name.
    """
    merged: dict[str, int] = {}
    for step, count in drafts_by_step.items():
        key = step or Stage.CONSENT.value
        if key == Stage.EDIT_PICK.value:
            key = Stage.SUMMARY.value
        merged[key] = merged.get(key, 0) + count
    order = step_order(form)
    labels = {Stage.CONSENT.value: t("report.step.consent")}
    labels.update({q.key: t(q.label_key) for q in form.questions})
    labels[Stage.SUMMARY.value] = t("report.step.summary")
    lines = [StepLine(step, labels[step], merged.get(step, 0)) for step in order]
    lines += [StepLine(s, s, merged[s]) for s in sorted(set(merged) - set(order))]
    return lines


def percent(share: float | None, language: str = "id") -> str:
    """A share with one decimal, 12,5 % in Indonesian and 12.5 % in English; "-" when unknown."""
    if share is None:
        return "-"
    number = f"{share * 100:.1f}"
    return (number if language == "en" else number.replace(".", ",")) + " %"


# --- files -------------------------------------------------------------------------------------


def _coverage_cell(line: AreaLine) -> float | None:
    return None if line.coverage is None else round(line.coverage * 100, 1)


def sheets(report: Report, t: Translate) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The report as titled tables (title, header, rows), in the reader's language."""
    area_header = [
        t("report.col.code"),
        t("report.col.name"),
        t("report.col.applications"),
        t("report.col.registered"),
        t("report.col.target"),
        t("report.col.coverage"),
    ]

    def area_rows(lines: Sequence[AreaLine]) -> list[list[Any]]:
        return [
            [a.code, a.name, a.applications, a.registered, a.target, _coverage_cell(a)]
            for a in lines
        ]

    return [
        (t("report.sheet.regencies"), area_header, area_rows([*report.regencies, report.total])),
        (t("report.sheet.villages"), area_header, area_rows(report.ranked_villages())),
        (
            t("report.sheet.weeks"),
            [t("report.col.week"), t("report.col.applications"), t("report.col.registered")],
            [[w.week, w.applications, w.registered] for w in report.weeks],
        ),
        (
            t("report.sheet.steps"),
            [t("report.col.step"), t("report.col.drafts")],
            [[s.label, s.drafts] for s in report.steps],
        ),
    ]


# The CSV is for machines: one long table with fixed English names, whatever the language.
CSV_HEADER = ("section", "code", "name", "measure", "value")


def csv_rows(report: Report) -> Iterable[tuple[str, str, str, str, Any]]:
    """The report as (section, code, name, measure, value) rows."""
    for section, lines in (
        ("total", [report.total]),
        ("regency", report.regencies),
        ("village", report.ranked_villages()),
    ):
        for a in lines:
            yield section, a.code, a.name, "applications", a.applications
            yield section, a.code, a.name, "registered", a.registered
            if a.target is not None:
                yield section, a.code, a.name, "potential_workers", a.target
                yield section, a.code, a.name, "coverage_percent", _coverage_cell(a)
    for w in report.weeks:
        yield "week", w.week.isoformat(), "", "applications", w.applications
        yield "week", w.week.isoformat(), "", "registered", w.registered
    for s in report.steps:
        yield "step", s.step, s.label, "drafts", s.drafts


def write_csv(report: Report, path: Path) -> None:
    """Write the report's long table as UTF-8 CSV (with BOM, so Excel reads the accents)."""
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        writer.writerows(csv_rows(report))


def write_xlsx(report: Report, path: Path, t: Translate) -> None:
    """Write the report as a workbook of one sheet per table, for people."""
    # Loaded here, not with the module: openpyxl pulls in numpy, a slow start for the bot.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, header, rows in sheets(report, t):
        # Sheet titles may hold at most 31 characters and no slashes.
        sheet = workbook.create_sheet(title.replace("/", "-")[:31])
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        sheet.freeze_panes = "A2"
        for index, name in enumerate(header):
            width = max([len(str(name)), *(len(str(r[index] or "")) for r in rows)])
            sheet.column_dimensions[chr(ord("A") + index)].width = min(48, width + 2)
        for row_cells in sheet.iter_rows(min_row=2):
            for cell in row_cells:
                if isinstance(cell.value, date):
                    cell.number_format = "DD-MM-YYYY"
    workbook.save(path)
