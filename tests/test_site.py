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
