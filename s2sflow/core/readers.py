"""What every kind's readers share: errors that name the file and line, reading a UTF-8 text file
with one clear line when it is missing or not UTF-8 (a byte-order mark is dropped), and CSV rows
whose malformed quoting is one line too."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from s2sflow.core.errors import S2SFlowError


def fail(path: Path, line: int, message: str) -> S2SFlowError:
    return S2SFlowError(f"{path} line {line}: {message}")


def open_text(path: str | Path) -> tuple[Path, str]:
    path = Path(path)
    if not path.is_file():
        raise S2SFlowError(f"{path}: file not found")
    try:
        return path, path.read_text(encoding="utf-8-sig")  # a BOM would hide in the first column's name
    except UnicodeDecodeError as err:
        raise S2SFlowError(f"{path}: not UTF-8 text (byte {err.start}); re-save the file as UTF-8") from None


def csv_rows(path: Path, text: str, delimiter: str = ",", quoting: bool = True) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) of ``text``, read strictly: a quote left open (which would swallow the rest of
    the file into one field) or text after a closing quote is one line naming where it was found. No
    field-size cap: a field is as long as the file allows, and the readers' own length limits say so."""
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True,
                        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as err:
        raise fail(path, reader.line_num, f"malformed CSV ({err}); check the quotes near here (a quote left open "
                                          f"runs on to the end of the file)") from None
