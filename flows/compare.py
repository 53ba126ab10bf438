"""The comparison flow: run a parameter grid as DVC experiments and summarise it.

    python -m flows.compare --task mnist --name opt-x-sched \\
        --grid mnist.train.optimizer.name=adadelta,adam \\
        --grid mnist.train.scheduler.name=steplr,cosine \\
        --set mnist.train.epochs=1 --jobs 2

Each grid point is queued with `dvc exp run --queue -S ...`; then `dvc exp run --run-all --jobs N`
starts DVC's queue workers (`dvc queue start --jobs N`) and follows them to the end: each experiment
runs in its own temporary clone under .dvc/tmp/exps (your files stay as they are; results are kept as
experiments, see `dvc exp show`), N at a time. The flow writes reports/compare/<name>.md (params and
metrics, best headline metric first) and reports/compare/<name>.png. Anything else already waiting in
DVC's queue runs too (see `dvc queue status`). DVC calls `--jobs` experimental and advises no more jobs
than CPU cores; each training takes its params' `trainer.num_threads`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.pipeline import dvc_command, failure_reason
from s2sflow.core.fsutil import atomic_write_bytes, atomic_write_text
from s2sflow.core.params import stage_name
from s2sflow.core.stages import headline_metric


def expand_grid(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _dvc(args: list[str], root: str) -> subprocess.CompletedProcess:
    cmd, env = dvc_command(*args)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)


@task(task_run_name="queue {exp_name}")
def queue_experiment(exp_name: str, overrides: dict[str, str], task_id: str, root: str) -> str:
    """`dvc exp run --queue --name NAME -S ... export@<task>`: the point waits in DVC's queue."""
    logger = get_run_logger()
    args = ["exp", "run", "--queue", "--name", exp_name, stage_name("export", task_id)]
    for key, value in overrides.items():
        args += ["-S", f"{key}={value}"]
    logger.info("$ dvc %s", " ".join(args))
    proc = _dvc(args, root)
    if proc.returncode != 0:
        raise RuntimeError(f"experiment {exp_name} could not be queued: "
                           f"{failure_reason(proc.stdout + proc.stderr, task_id)}")
    return exp_name


@task(task_run_name="run the queue ({jobs} at a time)")
def run_queue(jobs: int, root: str) -> str:
    """`dvc exp run --run-all --jobs N`: DVC's queue workers run every queued experiment, N at a time,
    and the command follows their logs to the end (compare() then finds which experiments exist)."""
    logger = get_run_logger()
    logger.info("$ dvc exp run --run-all --jobs %d", jobs)
    proc = _dvc(["exp", "run", "--run-all", "--jobs", str(jobs)], root)
    _dvc(["queue", "stop"], root)  # idle workers would otherwise linger a minute before leaving
    return proc.stdout + proc.stderr


def failed_experiments(missing: list[str], task_id: str, root: str) -> str:
    """One reason per experiment that left no result: its own error line, from `dvc queue logs`."""
    reasons = []
    for n in missing:
        log = _dvc(["queue", "logs", n], root)
        reasons.append(f"{n}: {failure_reason(log.stdout + log.stderr, task_id)}")
    return "experiment(s) failed: " + "; ".join(reasons)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def collect_experiments(root: str, names: list[str], task_id: str) -> list[dict]:
    """Params and metrics of the named experiments, from `dvc exp show --json`."""
    proc = _dvc(["exp", "show", "--json", "--all-commits"], root)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc exp show failed: {proc.stderr.strip()[-300:]}")
    rows = {}
    for commit in json.loads(proc.stdout):
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                name = rev.get("name") or exp.get("name")
                if name not in names or rev.get("error"):
                    continue
                data = rev.get("data") or {}
                params = _flatten((data.get("params", {}).get("params.yaml", {}) or {}).get("data", {}))
                metrics = _flatten((data.get("metrics", {}).get(f"metrics/{task_id}.json", {}) or {}).get("data", {}))
                rows[name] = {"name": name, "params": params, "metrics": metrics}
    return [rows[n] for n in names if n in rows]


def render_report(name: str, task_id: str, grid_keys: list[str], rows: list[dict],
                  headline: tuple[str, str] = ("accuracy", "max")) -> tuple[str, bytes]:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, goal = headline
    rows = sorted(rows, key=lambda r: r["metrics"].get(metric, float("-inf") if goal == "max" else float("inf")),
                  reverse=goal == "max")
    metric_keys = [metric] + sorted(k for k in {k for r in rows for k in r["metrics"]}
                                    if k != metric and "." not in k)
    header = ["experiment", *[k.removeprefix(f"{task_id}.") for k in grid_keys], *metric_keys]
    lines = [f"# Comparison `{name}` ({task_id}, sorted by {metric}, best first)", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in rows:
        cells = [r["name"], *[str(r["params"].get(k, "")) for k in grid_keys],
                 *[f"{r['metrics'][k]:.4f}" if isinstance(r["metrics"].get(k), float) else str(r["metrics"].get(k, ""))
                   for k in metric_keys]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"![{metric}]({name}.png)", "", "Reproduce one: `dvc exp apply <experiment>`; "
              "compare: `dvc exp show`, `dvc metrics diff`, `dvc params diff`.", ""]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows) + 2), 3.6))
    labels = ["\n".join(f"{k.split('.')[-2] if k.count('.') > 1 else k}={r['params'].get(k)}" for k in grid_keys)
              for r in rows]
    values = [r["metrics"].get(metric, 0.0) for r in rows]
    ax.bar(range(len(rows)), values, color="#3b7dd8")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.4f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel(metric)
    lo = min(values) if values else 0
    ax.set_ylim(max(0.0, lo - (max(values) - lo) * 0.5 - 0.01) if values else 0, (max(values) if values else 1) * 1.01)
    ax.set_title(f"{task_id}: {name}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return "\n".join(lines), buf.getvalue()


@flow(name="s2sflow-compare", log_prints=True)
def compare(task: str, grid: dict[str, list[str]], name: str, fixed: dict[str, str] | None = None,
            root: str = ".", jobs: int = 1) -> str:
    """Queue every point of ``grid`` (param -> values) with ``fixed`` overrides, run the queue ``jobs``
    at a time; return the report path."""
    root = str(Path(root).resolve())
    points = expand_grid(grid)
    names = [queue_experiment(f"{name}-{i}", {**(fixed or {}), **point}, task, root)
             for i, point in enumerate(points)]
    run_queue(jobs, root)
    rows = collect_experiments(root, names, task)
    missing = [n for n in names if n not in {r["name"] for r in rows}]
    if missing:
        raise RuntimeError(failed_experiments(missing, task, root))
    markdown, png = render_report(name, task, list(grid), rows, headline_metric(task, root))
    out = Path(root) / "reports" / "compare"
    atomic_write_text(out / f"{name}.md", markdown)
    atomic_write_bytes(out / f"{name}.png", png)
    create_markdown_artifact(key=f"compare-{name}".lower().replace("_", "-"), markdown=markdown)
    print(markdown)
    return str(out / f"{name}.md")


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"s2sflow: compare: {flag} {item!r}: expected KEY=VALUE, e.g. mnist.train.epochs=1")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="task id, e.g. mnist")
    parser.add_argument("--name", required=True, help="name of this comparison (report and experiment prefix)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="a params.yaml key and the values to try (repeat for a product grid)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a fixed override for every grid point (e.g. fewer epochs)")
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="experiments run at once by DVC's queue workers (default 1; at most the CPU cores)")
    args = parser.parse_args(argv)
    if not args.grid:
        parser.error("give at least one --grid KEY=V1,V2")
    if not 1 <= args.jobs <= (os.cpu_count() or 1):
        parser.error(f"--jobs {args.jobs}: must be between 1 and the CPU cores ({os.cpu_count() or 1})")
    grid = {k: v.split(",") for k, v in _pairs(args.grid, "--grid").items()}
    state = compare(task=args.task, grid=grid, name=args.name, fixed=_pairs(args.set, "--set"), root=args.root,
                    jobs=args.jobs, return_state=True)
    if state.is_completed():
        print(f"s2sflow: compare: wrote {state.result()}")
        return 0
    print(f"s2sflow: compare failed: {state.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
