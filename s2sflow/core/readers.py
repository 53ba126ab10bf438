"""What every kind's readers share: errors that name the file and line, and reading a UTF-8 text file
with one clear line when it is missing or not UTF-8."""

from __future__ import annotations

from pathlib import Path

from s2sflow.core.errors import S2SFlowError


def fail(path: Path, line: int, message: str) -> S2SFlowError:
    return S2SFlowError(f"{path} line {line}: {message}")


def open_text(path: str | Path) -> tuple[Path, str]:
    path = Path(path)
    if not path.is_file():
        raise S2SFlowError(f"{path}: file not found")
    try:
        return path, path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise S2SFlowError(f"{path}: not UTF-8 text (byte {err.start}); re-save the file as UTF-8") from None
