"""Wall time of every stage of the last pipeline run, per task, from the flow's own record.

    python benchmarks/run_times.py                  # the newest .s2sflow/runs/*.json
    python benchmarks/run_times.py --record FILE    # a given record
    python benchmarks/run_times.py --markdown       # the table as Markdown (for the README)

`make run` (flows/pipeline.py) writes .s2sflow/runs/<UTC start>.json as it goes: each stage's wall
time as the flow saw it (Prefect's task overhead included), whether DVC ran it or `dvc status` found it
up to date (shown as "·"), and its end state. The install time comes from .venv/.install_seconds
(written by `make install` when it installs). A run stopped half-way shows the stages it reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2sflow.runrecord import latest_record, table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", type=Path, help="a run record (default: the newest under .s2sflow/runs)")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root (default: this checkout)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    path = args.record or latest_record(args.root)
    if path is None:
        print(f"run_times: no run record under {args.root / '.s2sflow' / 'runs'}; run `make run` first",
              file=sys.stderr)
        return 1
    try:
        record = json.loads(path.read_text())
        install_file = args.root / ".venv" / ".install_seconds"
        install = float(install_file.read_text()) if install_file.is_file() else None
        head, rows, notes = table(record, install)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"run_times: {path}: not a readable run record ({err}); pass another with --record", file=sys.stderr)
        return 1
    print(f"run record {path} (started {record['started']}), seconds per stage:")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
