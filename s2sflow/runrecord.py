"""The pipeline flow's run records (``.s2sflow/runs/<UTC start>.json``): the newest one, and its table of
wall time per stage and task (``benchmarks/run_times.py`` prints it; ``s2sflow report`` shows it)."""

from __future__ import annotations

from pathlib import Path

STAGES = ("download", "split", "tokenize", "train", "evaluate", "export")


def latest_record(root: Path) -> Path | None:
    """The newest run record of the project at ``root`` (None before any `make run`)."""
    records = sorted((root / ".s2sflow" / "runs").glob("*.json"))
    return records[-1] if records else None


def clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def table(record: dict, install: float | None) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, one row per task with seconds per stage and its total plus an ``all`` row, notes): a
    stage `dvc status` found up to date is marked ``·``; ``install``: seconds of the last `make install`."""
    tasks: dict[str, dict[str, dict]] = {}
    extra = []
    for row in record["stages"]:
        if row["task"] is None:
            extra.append(row)
        else:
            tasks.setdefault(row["task"], {})[row["stage"]] = row
    head = ["task", *STAGES, "total"]
    rows = []
    sums = dict.fromkeys(STAGES, 0.0)
    for task, stages in tasks.items():
        cells, total = [task], 0.0
        for stage in STAGES:
            row = stages.get(stage)
            if row is None:
                cells.append("")
                continue
            total += row["seconds"]
            sums[stage] += row["seconds"]
            mark = "" if row["state"] == "Completed" else f" {row['state'].lower()}"
            cells.append((f"{row['seconds']:.1f}" if row["ran"] else f"· {row['seconds']:.1f}") + mark)
        rows.append([*cells, clock(total)])
    rows.append(["all", *(clock(sums[s]) for s in STAGES), clock(sum(sums.values()))])
    notes = [f"{row['stage']}: {row['seconds']:.1f} s" for row in extra]
    notes.append(f"flow (from its first `dvc status` to the last stage): {clock(record['seconds'])}")
    if record.get("max_parallel", 1) > 1:
        notes.append(f"chains side by side (max_parallel {record['max_parallel']}): stage times overlap, so the "
                     f"`all` row ({clock(sum(sums.values()))}) sums more than the flow's wall time; every stage "
                     f"but train ran at nice 19 beside the trainings ({clock(sums['train'])} of training)")
    if install is not None:
        notes.append(f"install (make install, last time it ran): {clock(install)}")
    ran = sum(1 for r in record["stages"] if r["task"] and r["ran"])
    notes.append(f"stages run by DVC: {ran}; up to date (·): "
                 f"{sum(1 for r in record['stages'] if r['task'] and not r['ran'])}")
    return head, rows, notes
