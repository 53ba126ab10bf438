"""The results page's pieces that need no built project: Markdown tables (with escaped pipes) as HTML,
curves as SVG, and the one-line refusal of malformed targets."""

import shutil

import pytest

from conftest import REPO
from s2sflow.core.errors import S2SFlowError
from s2sflow.site import _curve_svg, _markdown, build_site


def test_markdown_tables_keep_escaped_pipes_and_escape_html():
    html = _markdown("# dialogue: test samples\n\nDecoding: <beam>\n\n| # | source | prediction |\n"
                     "| --- | --- | --- |\n| 0 | Hi \\| how are you ? | Fine & you ? |\n")
    assert "<h3>dialogue: test samples</h3>" in html and "<p>Decoding: &lt;beam&gt;</p>" in html
    assert "<td>Hi | how are you ?</td>" in html and "<td>Fine &amp; you ?</td>" in html
    assert html.count("<tr>") == 2  # header + one row; the --- line is not a row


def test_a_curve_is_an_svg_polyline_of_its_points(tmp_path):
    tsv = tmp_path / "loss.tsv"
    tsv.write_text("step\tloss\n10\t2.0\n20\t1.0\n30\tnan\n40\t0.5\n")
    svg = _curve_svg(tsv, "train loss")
    assert svg.startswith("<svg class='chart'") and svg.count("<circle") == 3  # the NaN row is left out
    tsv.write_text("step\tloss\n")
    assert _curve_svg(tsv, "empty") == ""


@pytest.mark.parametrize("targets, message", [
    ("[1, 2]", r"report\.targets: expected \{metric: minimum\} per task"),
    ("{mnist: 0.99}", r"report\.targets\.mnist: expected"),
    ("{mnist: {accuracy: high}}", r"report\.targets\.mnist: expected"),
])
def test_malformed_targets_are_one_line_before_anything_is_written(tmp_path, targets, message):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    text = (tmp_path / "params.yaml").read_text()
    start = text.index("report:\n")
    end = text.index("\n\n", start)
    (tmp_path / "params.yaml").write_text(text[:start] + f"report:\n  targets: {targets}" + text[end:])
    with pytest.raises(S2SFlowError, match=message):
        build_site(tmp_path)
    assert not (tmp_path / "reports").exists()


def test_run_table_sums_each_stage_and_says_when_chains_overlapped():
    """The run-time table (benchmarks/run_times.py, the results page): per task and stage seconds, an
    `all` row of sums, and for chains side by side a note that the sums exceed the flow's wall time."""
    from s2sflow.runrecord import table

    rows = [{"stage": "dvc status", "task": None, "seconds": 1.5, "ran": True, "state": "Completed"}]
    for task, train in (("a", 100.0), ("b", 50.0)):
        rows += [{"stage": s, "task": task, "seconds": train if s == "train" else 10.0, "ran": True,
                  "state": "Completed"} for s in ("download", "split", "tokenize", "train", "evaluate", "export")]
    record = {"seconds": 160.0, "max_parallel": 3, "stages": rows}
    head, body, notes = table(record, install=90.0)
    assert head[-1] == "total" and body[0] == ["a", "10.0", "10.0", "10.0", "100.0", "10.0", "10.0", "2:30"]
    assert body[-1] == ["all", "0:20", "0:20", "0:20", "2:30", "0:20", "0:20", "4:10"]
    assert "flow (from its first `dvc status` to the last stage): 2:40" in notes
    assert any("max_parallel 3" in n and "(4:10) sums more than the flow's wall time" in n and "2:30 of training" in n
               for n in notes), notes
    assert not any("max_parallel" in n for n in table({**record, "max_parallel": 1}, None)[2])
