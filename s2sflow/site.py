"""``s2sflow report``: one static HTML page of a project's results (``reports/site/index.html``, no
server, no script, images inlined), built from the files the pipeline already wrote:

- every task's test metrics (``metrics/<task>.json``) beside its target (params ``report.targets``) and
  its no-training baseline (s2sflow.baselines for the text tasks, the evaluate stage's own
  ``extractive_*`` scores for summarization, the majority class for MNIST);
- training curves (``reports/<task>/training/<split>/<metric>.tsv``, drawn as inline SVG), confusion
  matrices and error images (``reports/<task>/eval/*.png``), error and sample tables
  (``errors.json`` / ``samples.json``; ``samples.md`` and ``decodings.md`` of the generation tasks);
- the comparison reports (``reports/compare/*.md`` and their plots);
- each model's lineage from its card (``exports/<task>/model_card.json``: data origin and hashes, the
  train params, the git commit, precision and CPU) and the stage times of the newest run record.

A part that is missing (a task not built yet) is said so on the page, never an error. The page is
written to a temporary file and renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path

from s2sflow.core.errors import S2SFlowError
from s2sflow.core.fsutil import atomic_write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d1e0;font-size:13px}main{padding:8px 28px 40px;max-width:1200px}
nav a{margin-right:12px}section{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:14px 18px;
margin:16px 0}h2{font-size:19px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #dde2ea;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17743a;font-weight:600}.miss{color:#b3261e;font-weight:600}.muted{color:#6b7385}
.charts{display:flex;flex-wrap:wrap;gap:10px}.chart{border:1px solid #eef1f6;padding:4px}
img{max-width:min(100%,760px);border:1px solid #eef1f6}pre{background:#f3f5f8;padding:8px;overflow:auto;font-size:12px}
details{margin:6px 0}summary{cursor:pointer;color:#34518a}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _num(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    return _e(f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) and abs(value) < 1000 else value)


def _table(head: list[str], rows: list[list], cls: str = "") -> str:
    out = [f"<table class='{cls}'><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple):  # (html, css class[, attributes]): already escaped
                cells.append(f"<td class='{cell[1]}'{cell[2] if len(cell) > 2 else ''}>{cell[0]}</td>")
            elif isinstance(cell, (int, float)) and not isinstance(cell, bool):
                cells.append(f"<td class='num'>{_num(cell)}</td>")
            else:
                cells.append(f"<td>{_e(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _records_table(records: list[dict], limit: int = 20) -> str:
    """A list of flat JSON objects (errors.json, samples.json) as a table of its first ``limit`` rows."""
    keys: list[str] = []
    for r in records[:limit]:
        keys += [k for k in r if k not in keys]
    rows = [[_short(r.get(k, "")) for k in keys] for r in records[:limit]]
    return _table(keys, rows)


def _short(value, width: int = 300):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[:width] + " …"


def _markdown(text: str) -> str:
    """The Markdown the stages write (headings, paragraphs, pipe tables) as HTML."""
    out, table = [], []

    def flush():
        if table:
            rows = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
                    for line in table if not re.fullmatch(r"\|[\s:|-]+\|?", line.strip())]
            if rows:
                out.append(_table(rows[0], rows[1:]))
            table.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        flush()
        if m := re.match(r"(#{1,6})\s+(.*)", line):
            out.append(f"<h3>{_e(m.group(2))}</h3>")
        elif m := re.match(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip()):
            out.append(f"<p class='muted'>(image: {_e(m.group(2))})</p>")
        elif line.strip():
            out.append(f"<p>{_e(line)}</p>")
    flush()
    return "".join(out)


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


def _curve_svg(path: Path, title: str) -> str:
    """A TSV curve (``step<TAB>value`` rows) as a small line chart."""
    points = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        try:
            x, y = float(parts[0]), float(parts[-1])
        except (ValueError, IndexError):
            continue
        if math.isfinite(x) and math.isfinite(y):
            points.append((x, y))
    if not points:
        return ""
    w, h, pad = 300, 150, 34
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (w - pad - 8) / ((x1 - x0) or 1)
    sy = (h - 2 * 18) / ((y1 - y0) or 1)
    coords = " ".join(f"{pad + (x - x0) * sx:.1f},{h - 18 - (y - y0) * sy:.1f}" for x, y in points)
    mark = "".join(f"<circle cx='{pad + (x - x0) * sx:.1f}' cy='{h - 18 - (y - y0) * sy:.1f}' r='2.5' "
                   f"fill='#34518a'/>" for x, y in points) if len(points) <= 12 else ""
    return (f"<svg class='chart' width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img' "
            f"aria-label='{_e(title)}'><text x='{pad}' y='12' font-size='11'>{_e(title)}</text>"
            f"<text x='2' y='22' font-size='9' fill='#6b7385'>{_e(_num(y1))}</text>"
            f"<text x='2' y='{h - 18}' font-size='9' fill='#6b7385'>{_e(_num(y0))}</text>"
            f"<text x='{pad}' y='{h - 4}' font-size='9' fill='#6b7385'>step {_e(_num(x0))}</text>"
            f"<text x='{w - 60}' y='{h - 4}' font-size='9' fill='#6b7385'>{_e(_num(x1))}</text>"
            f"<line x1='{pad}' y1='{h - 18}' x2='{w - 8}' y2='{h - 18}' stroke='#c9d1e0'/>"
            f"<polyline fill='none' stroke='#34518a' stroke-width='1.5' points='{coords}'/>{mark}</svg>")


def _baseline(root: Path, task: str, kind: str, metrics: dict) -> dict:
    """The task's no-training baseline scores (empty where the kind has none)."""
    try:
        if kind == "text":
            from s2sflow.baselines import baseline

            return baseline(task, root)
        if kind == "mnist":
            from collections import Counter

            from safetensors.torch import load_file

            folder = root / "data" / "tokenized" / task
            train, test = load_file(str(folder / "train.safetensors")), load_file(str(folder / "test.safetensors"))
            label = next(k for k in train if k != "images")
            top = Counter(train[label].tolist()).most_common(1)[0][0]
            return {"baseline": "majority class", "accuracy": round(float((test[label] == top).float().mean()), 4)}
    except Exception as err:  # noqa: BLE001 - a page, not a stage: say so in the cell and go on
        return {"baseline": f"not available ({err.__class__.__name__}: {str(err)[:120]})"}
    extractive = {k.removeprefix("extractive_"): v for k, v in metrics.items() if k.startswith("extractive_")}
    return {"baseline": "extractive (TF-IDF centroid sentences)", **extractive} if extractive else {}


def _task_section(root: Path, task: str, kind: str, headline: str, metrics: dict | None, target: dict,
                  base: dict) -> str:
    out = [f"<section id='task-{_e(task)}'><h2>{_e(task)} <span class='muted'>({_e(kind)})</span></h2>"]
    if metrics is None:
        out.append(f"<p class='muted'>not built yet: no metrics/{_e(task)}.json (run `dvc repro export@{_e(task)}`)"
                   f"</p></section>")
        return "".join(out)
    rows = []
    for name, value in sorted(metrics.items()):  # the value exactly as metrics/<task>.json has it
        goal = target.get(name)
        shown = _e(json.dumps(value, ensure_ascii=False))
        rows.append([name, (shown, "num", f" data-task='{_e(task)}' data-metric='{_e(name)}'"),
                     goal if goal is not None else "", base.get(name, "")])
    out.append("<h3>Test metrics</h3>" + _table(["metric", "value", "target", "no-training baseline"], rows,
                                               "metrics") + f"<p class='muted'>headline: {_e(headline)}</p>")
    curves = sorted((root / "reports" / task / "training").glob("*/*.tsv"))
    charts = [_curve_svg(p, f"{p.parent.name} {p.stem}") for p in curves]
    if any(charts):
        out.append("<h3>Training curves</h3><div class='charts'>" + "".join(charts) + "</div>")
    evaluation = root / "reports" / task / "eval"
    for png in sorted(evaluation.glob("*.png")):
        out.append(f"<h3>{_e(png.stem.replace('_', ' '))}</h3>{_image(png, f'{task} {png.stem}')}")
    for name in ("errors", "samples"):
        records = _read_json(evaluation / f"{name}.json")
        if isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
            out.append(f"<details><summary>{_e(name)} ({len(records)} test items; first 20)</summary>"
                       f"{_records_table(records)}</details>")
    for name in ("decodings", "samples"):
        md = evaluation / f"{name}.md"
        if md.is_file():
            out.append(f"<details{' open' if name == 'decodings' else ''}><summary>{_e(name)}.md</summary>"
                       f"{_markdown(md.read_text(encoding='utf-8'))}</details>")
    card = _read_json(root / "exports" / task / "model_card.json")
    if isinstance(card, dict):
        out.append(_lineage(card))
    return "".join(out) + "</section>"


def _lineage(card: dict) -> str:
    data = card.get("data") or {}
    files = data.get("files") or {}
    origin = (data.get("origin") or {}).get("files") or {}
    rows = [[name, origin.get(name, ""), info.get("sha256", "") if isinstance(info, dict) else info,
             info.get("bytes", "") if isinstance(info, dict) else ""] for name, info in sorted(files.items())]
    training = card.get("training") or {}
    git = card.get("git") or {}
    facts = {"kind": card.get("kind"), "git commit": f"{git.get('commit', '?')}"
             f"{' (outputs differed from it)' if git.get('dirty') else ''}"}
    facts.update({k: training[k] for k in ("engine", "precision", "epochs", "global_step", "parameters",
                                            "cpu_capability", "device", "num_threads") if k in training})
    libraries = card.get("libraries") or {}
    facts.update({k: libraries[k] for k in ("torch", "pytorch-lightning", "dvc", "prefect") if k in libraries})
    params = card.get("params") or {}
    out = ["<details><summary>Lineage (model card)</summary>",
           _table(["fact", "value"], [[k, v] for k, v in facts.items()]) if facts else "",
           f"<p>Data: {_e(data.get('license', ''))}</p>" if data.get("license") else "",
           _table(["file", "origin", "sha256", "bytes"], rows) if rows else "",
           "<h3>Params</h3><pre>" + _e(json.dumps(params, indent=1, sort_keys=True)) + "</pre>" if params else "",
           "</details>"]
    return "".join(out)


def _stage_times(root: Path) -> str:
    from s2sflow.runrecord import latest_record, table

    path = latest_record(root)
    record = _read_json(path) if path else None
    if not isinstance(record, dict):
        return "<section id='times'><h2>Stage times</h2><p class='muted'>no run record yet (make run)</p></section>"
    try:
        install_file = root / ".venv" / ".install_seconds"
        install = float(install_file.read_text()) if install_file.is_file() else None
        head, rows, notes = table(record, install)
    except (KeyError, TypeError, ValueError):
        return "<section id='times'><h2>Stage times</h2><p class='muted'>unreadable run record</p></section>"
    return (f"<section id='times'><h2>Stage times</h2><p class='muted'>run {_e(record.get('started'))}, "
            f"seconds per stage (· = up to date, not run)</p>{_table(head, rows)}"
            + "".join(f"<p class='muted'>{_e(n)}</p>" for n in notes) + "</section>")


def _comparisons(root: Path) -> str:
    folder = root / "reports" / "compare"
    parts = []
    for md in sorted(folder.glob("*.md")):
        parts.append(f"<h3>{_e(md.stem)}</h3>{_markdown(md.read_text(encoding='utf-8'))}")
        png = md.with_suffix(".png")
        if png.is_file():
            parts.append(_image(png, f"comparison {md.stem}"))
    body = "".join(parts) or "<p class='muted'>no comparison yet (flows/compare.py)</p>"
    return f"<section id='compare'><h2>Comparisons</h2>{body}</section>"


def build_site(root: str | Path = ".", out: str | Path | None = None) -> Path:
    """Write the results page of the project at ``root``; returns its path."""
    from s2sflow.core.kind import get_kind
    from s2sflow.core.lineage import git_state
    from s2sflow.core.params import load_params
    from s2sflow.core.stages import pipeline_tasks

    root = Path(root).resolve()
    if not (root / "params.yaml").is_file():
        raise S2SFlowError(f"{root}: no params.yaml; run `s2sflow report` in the project folder or pass --root")
    tasks = pipeline_tasks(root / "params.yaml")
    params = load_params(root / "params.yaml")  # read once: each task's headline comes from its section here
    targets = (params.get("report") or {}).get("targets") or {}
    for task, target in (targets.items() if isinstance(targets, dict) else [(None, None)]):
        if not isinstance(target, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                                   and not isinstance(v, bool) for k, v in target.items()):
            raise S2SFlowError(f"params.yaml: report.targets{'.' + str(task) if task else ''}: expected "
                               f"{{metric: minimum}} per task, e.g. `mnist: {{accuracy: 0.99}}`")
    summary, sections = [], []
    for task, kind in tasks.items():
        metrics = _read_json(root / "metrics" / f"{task}.json")
        metrics = metrics if isinstance(metrics, dict) else None
        headline, _ = get_kind(kind, task).headline(params.get(task) or {})
        target = targets.get(task) or {}
        base = _baseline(root, task, kind, metrics or {}) if metrics is not None else {}
        value = (metrics or {}).get(headline)
        goal = next(iter(target.items()), None)
        if goal and metrics is not None and isinstance(metrics.get(goal[0]), (int, float)):
            met = metrics[goal[0]] >= goal[1]
            verdict = (f"{_e(goal[0])} {_num(metrics[goal[0]])} {'≥' if met else '<'} {_num(goal[1])}",
                       "ok" if met else "miss")
        else:
            verdict = ("", "")
        summary.append([(f"<a href='#task-{_e(task)}'>{_e(task)}</a>", ""), kind, headline,
                        value if value is not None else "not built", verdict,
                        base.get(headline, "") if base else ""])
        sections.append(_task_section(root, task, kind, headline, metrics, target, base))
    commit = (git_state(root)["commit"] or "unknown")[:12]
    nav = "".join(f"<a href='#task-{_e(t)}'>{_e(t)}</a>" for t in tasks)
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>s2sflow results</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body>"
            f"<header><h1>s2sflow results</h1><p>{_e(root.name)} at commit {_e(commit)}; "
            f"{len(tasks)} tasks</p></header><main><nav>{nav} <a href='#times'>stage times</a> "
            f"<a href='#compare'>comparisons</a></nav><section id='summary'><h2>Summary</h2>"
            + _table(["task", "kind", "headline", "test value", "target", "no-training baseline"], summary,
                     "summary")
            + "</section>" + "".join(sections) + _comparisons(root) + _stage_times(root) + "</main></body></html>")
    target_path = Path(out) if out else root / "reports" / "site" / "index.html"
    target_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target_path, page)
    return target_path
