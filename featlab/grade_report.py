"""What ``featlab grade`` writes for people, from the rows of ``featlab/grade.py``.

* ``feedback/STUDENT.html``: one page per student, readable offline (no script, no link out):
  every check with its status, points, message and what to look at next (the exercise's
  section the check ends);
* ``totals.csv``: points per student and exercise, the total and the points possible;
* ``summary.html`` and ``summary.png``: the class view, the checks that fail most (counts per
  status, a chart) and the most common messages of each check: what to read before the next lab.

``write_reports(rows, folder, reference_dir)`` writes them all (docs/grading.md).
"""
from __future__ import annotations

import csv
import html
from collections import Counter
from pathlib import Path

from .grade import STATUSES, reference_checks

__all__ = ["write_reports", "write_feedback", "write_totals", "write_summary", "failing_checks",
           "next_step"]

_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top;text-align:left}th{background:#f3f3f3}.pass{color:#1a7f37}.fail{color:#b35900}
.error{color:#c62828}.missing,.not-run{color:#666}code{background:#f6f6f6;padding:0 .2em}
</style>"""

_COLOURS = {"pass": "#1a7f37", "fail": "#e69500", "error": "#c62828", "missing": "#9e9e9e",
            "not-run": "#cfcfcf"}


def _earned(row: dict) -> float:
    return float(row["points"]) if row["status"] == "pass" else 0.0


def _num(x: float) -> str:
    return f"{x:g}"


def next_step(row: dict, section: str) -> str:
    """What a student should look at next for one row (plain text)."""
    where = f"“{section}” in exercises/{row['exercise']}.ipynb" if section else f"exercises/{row['exercise']}.ipynb"
    status, message = row["status"], row["message"]
    if status == "pass":
        return ""
    if message.startswith("no notebook submitted"):
        return f"Submit {row['exercise']}.ipynb (start from exercises/{row['exercise']}.ipynb)."
    if "check cell deleted" in message or message.startswith("check cell edited:"):
        return f"Restore the check cell of {where} exactly as the exercise has it, then run it."
    if status == "fail":
        return f"Re-read {where}; fix your function until its check cell prints ✓."
    if status == "not-run":
        return "The notebook stopped before this check: fix what stopped it (see the message), then run all cells."
    if "limit" in message:
        return f"Your code for {where} ran past a grading limit: make it finish (and smaller)."
    return (f"Run your notebook top to bottom (Restart & Run All) and fix the first error; "
            f"the check belongs to {where}.")


def _sections(rows: list[dict], reference_dir: Path | None) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    if reference_dir is None:
        return out
    for exercise in sorted({r["exercise"] for r in rows}):
        path = Path(reference_dir) / f"{exercise}.ipynb"
        if path.exists():
            for check in reference_checks(path):
                for name in check.names:
                    out[(exercise, name)] = check.section
    return out


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title>{_STYLE}</head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def write_feedback(rows: list[dict], folder: str | Path,
                   sections: dict[tuple[str, str], str] | None = None) -> list[Path]:
    """One ``folder/STUDENT.html`` per student; returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sections = sections or {}
    written = []
    for student in sorted({r["student"] for r in rows}):
        mine = [r for r in rows if r["student"] == student]
        got, total = sum(map(_earned, mine)), sum(float(r["points"]) for r in mine)
        lines = ["<tr><th>exercise</th><th>check</th><th>status</th><th>points</th><th>message</th>"
                 "<th>what to look at next</th></tr>"]
        for r in mine:
            e = html.escape
            lines.append(
                f"<tr><td>{e(r['exercise'])}</td><td><code>{e(r['check'])}</code></td>"
                f"<td class=\"{e(r['status'])}\">{e(r['status'])}</td>"
                f"<td>{_num(_earned(r))} / {_num(float(r['points']))}</td><td>{e(r['message'])}</td>"
                f"<td>{e(next_step(r, sections.get((r['exercise'], r['check']), '')))}</td></tr>")
        passed = sum(r["status"] == "pass" for r in mine)
        body = (f"<p><b>{_num(got)} of {_num(total)} points</b>: {passed} of {len(mine)} checks passed.</p>\n"
                f"<table>\n" + "\n".join(lines) + "\n</table>\n"
                "<p>Status: <b>pass</b> the check ran and passed; <b>fail</b> your answer is not right yet; "
                "<b>error</b> something else went wrong (an exception, a limit, an edited check cell); "
                "<b>missing</b> no notebook or no check cell; <b>not-run</b> the notebook stopped before it.</p>")
        path = folder / f"{student}.html"
        path.write_text(_page(f"Feedback for {student}", body), encoding="utf-8")
        written.append(path)
    return written


def write_totals(rows: list[dict], path: str | Path) -> None:
    """CSV ``student, <one column per exercise>, total, possible``: points earned (a check's
    points count only when it passed)."""
    exercises = sorted({r["exercise"] for r in rows})
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", *exercises, "total", "possible"])
        for student in sorted({r["student"] for r in rows}):
            mine = [r for r in rows if r["student"] == student]
            per = [sum(_earned(r) for r in mine if r["exercise"] == e) for e in exercises]
            w.writerow([student, *map(_num, per), _num(sum(per)), _num(sum(float(r["points"]) for r in mine))])


def failing_checks(rows: list[dict], top: int = 3) -> list[dict]:
    """Per check, most failed first: ``{exercise, check, counts (per status), failed, messages}``,
    ``failed`` = rows not ``pass``, ``messages`` = the ``top`` commonest messages of those, with
    their counts."""
    keys = list(dict.fromkeys((r["exercise"], r["check"]) for r in rows))
    out = []
    for exercise, check in keys:
        mine = [r for r in rows if (r["exercise"], r["check"]) == (exercise, check)]
        counts = Counter(r["status"] for r in mine)
        bad = Counter(r["message"] or r["status"] for r in mine if r["status"] != "pass")
        out.append({"exercise": exercise, "check": check, "counts": {s: counts[s] for s in STATUSES},
                    "failed": sum(bad.values()), "messages": bad.most_common(top)})
    return sorted(out, key=lambda c: -c["failed"])   # stable: course order among ties


def _chart(checks: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = [f"{c['exercise'].split('_', 1)[0]} {c['check']}" for c in checks][::-1]
    fig = Figure(figsize=(9, 0.35 * len(checks) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    left = [0] * len(checks)
    for status in STATUSES:
        values = [c["counts"][status] for c in checks][::-1]
        ax.barh(labels, values, left=left, color=_COLOURS[status], label=status)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("students")
    ax.set_title("Checks by number of students who did not pass")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_summary(rows: list[dict], folder: str | Path) -> tuple[Path, Path]:
    """``folder/summary.html`` and ``folder/summary.png`` (the chart); returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checks = failing_checks(rows)
    png, page = folder / "summary.png", folder / "summary.html"
    _chart(checks, png)
    e = html.escape
    lines = ["<tr><th>exercise</th><th>check</th><th>not passed</th>"
             + "".join(f"<th>{s}</th>" for s in STATUSES) + "<th>most common messages</th></tr>"]
    for c in checks:
        msgs = "<br>".join(f"{n} × {e(m)}" for m, n in c["messages"])
        lines.append(f"<tr><td>{e(c['exercise'])}</td><td><code>{e(c['check'])}</code></td>"
                     f"<td>{c['failed']}</td>" + "".join(f"<td>{c['counts'][s]}</td>" for s in STATUSES)
                     + f"<td>{msgs}</td></tr>")
    students = len({r["student"] for r in rows})
    body = (f"<p>{students} students, {len(checks)} checks; checks that most students did not pass "
            f"come first.</p>\n<img src=\"summary.png\" alt=\"checks by status\">\n"
            "<table>\n" + "\n".join(lines) + "\n</table>")
    page.write_text(_page("Class summary", body), encoding="utf-8")
    return page, png


def write_reports(rows: list[dict], folder: str | Path, reference_dir: str | Path | None = None) -> Path:
    """Feedback pages (``folder/feedback/``), ``totals.csv`` and the class summary in ``folder``;
    ``reference_dir`` (the exercises) names each check's section. Returns ``folder``."""
    folder = Path(folder)
    sections = _sections(rows, Path(reference_dir) if reference_dir is not None else None)
    write_feedback(rows, folder / "feedback", sections)
    write_totals(rows, folder / "totals.csv")
    write_summary(rows, folder)
    return folder
