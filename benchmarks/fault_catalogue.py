"""Print the bad-input catalogue with each case's outcome: the one line the reader gives (what
tests/test_fault_catalogue.py asserts), by reader, and the count per reader. No data needed.

    .venv/bin/python benchmarks/fault_catalogue.py            # a Markdown table
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from test_fault_catalogue import CASES  # noqa: E402

from s2sflow.core.errors import S2SFlowError  # noqa: E402


def outcome(case, folder: Path) -> tuple[bool, str]:
    """(held, what happened): held when the reader gave the expected one line."""
    path = folder / case.file
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        path.write_text(case.content, encoding="utf-8")
    if case.reader == "parallel" and path.suffix == ".en":
        path.with_suffix(".de").write_text("eins\nzwei\n", encoding="utf-8")
    try:
        case.call(path)
    except S2SFlowError as err:
        message = str(err)
        held = "\n" not in message and message.startswith(str(path) + case.expected)
        return held, "<file>" + message[len(str(folder / case.file)):] if message.startswith(str(path)) else message
    except Exception as err:  # noqa: BLE001 - what the catalogue exists to catch
        return False, f"{err.__class__.__name__} (a traceback)"
    return False, "accepted (no error)"


def main() -> int:
    rows, failed = [], 0
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            held, line = outcome(case, Path(tmp))
        failed += not held
        rows.append(f"| {case.reader} | {case.name} | {'one line' if held else 'FAILS'} | `{line[:110]}` |")
    print("| reader | case | outcome | the line |\n| --- | --- | --- | --- |")
    print("\n".join(rows))
    counts = Counter(c.reader for c in CASES)
    print(f"\n{len(CASES)} cases ({', '.join(f'{r} {n}' for r, n in counts.items())}): "
          f"{len(CASES) - failed} give one line, {failed} do not")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
