"""The check verdict, its Markdown and the disagreement grid, from hand-made scores (no TF)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgeseg.core.metrics import scores_from_confusion
from edgeseg.core.spec import ModelSpec
from edgeseg.eval.check_result import CheckResult
from edgeseg.eval.evaluate import EvalResult, iou_by_name
from edgeseg.eval.report import CELL, append_step_summary, disagreement_grid, make_disagreement

SPEC = ModelSpec(64, 64, ("road", "car", "sky"))


def _eval(name: str, cm: list[list[int]]) -> EvalResult:
    m = np.array(cm, np.int64)
    return EvalResult(Path(name), Path("data/val"), SPEC, scores_from_confusion(m), 4, 5.0, m)


FLOAT = _eval("m.keras", [[90, 10, 0], [5, 95, 0], [0, 0, 100]])
INT8 = _eval("m_int8.tflite", [[80, 20, 0], [5, 95, 0], [0, 0, 100]])


def _check(max_drop: float, max_class_drop: float | None = None) -> CheckResult:
    return CheckResult(
        int8=INT8,
        float_eval=FLOAT,
        baseline="model",
        float_miou=FLOAT.miou,
        float_per_class_iou=iou_by_name(FLOAT.scores, SPEC.class_names),
        max_drop=max_drop,
        max_class_drop=max_class_drop,
        agreement=0.9,
    )


def test_drop_is_in_points_and_limits_decide_the_verdict() -> None:
    res = _check(max_drop=100.0)
    assert res.miou_drop == pytest.approx(100 * (FLOAT.miou - INT8.miou))
    assert res.miou_drop > 1.0
    assert res.class_drops["sky"] == pytest.approx(0.0)
    assert res.class_drops["road"] > res.class_drops["car"] > 0
    assert res.passed
    failed = _check(max_drop=1.0)
    assert not failed.passed and "--max-drop 1" in failed.failures[0]
    per_class = _check(max_drop=100.0, max_class_drop=5.0)
    assert [f for f in per_class.failures if "'road'" in f]
    assert not [f for f in per_class.failures if "'sky'" in f]


def test_results_repr_is_the_headline_not_the_confusion_matrix() -> None:
    spec = SPEC.with_updates(extra={"qat": {"float_val": {"miou": 0.5}}}, float_miou=0.9)
    int8 = EvalResult(INT8.model, INT8.data, spec, INT8.scores, 4, 5.0, INT8.confusion)
    assert repr(int8) == (
        f"EvalResult(model='m_int8.tflite', data='data/val', images=4, miou={INT8.miou:.4f}, "
        f"pixel_accuracy={INT8.scores.pixel_accuracy:.4f})"
    )
    res = _check(max_drop=1.0)
    text = repr(res)
    assert text.startswith("CheckResult(passed=False, int8='m_int8.tflite', ")
    assert f"miou_drop={res.miou_drop:.2f} points (max 1)" in text
    assert "agreement=90.00%" in text and "baseline='model'" in text
    assert "confusion" not in text and "ModelSpec" not in text and "\n" not in text
    # a spec's repr leaves out the per-class scores and the metadata bag
    assert "float_per_class_iou" not in repr(spec) and "qat" not in repr(spec)
    assert "class_names=('road', 'car', 'sky')" in repr(spec)


def test_a_drop_that_rounds_to_zero_prints_without_a_minus() -> None:
    hair = _eval("m_int8.tflite", [[90, 10, 0], [5, 95, 0], [0, 0, 100]])
    res = CheckResult(hair, FLOAT, "model", FLOAT.miou - 1e-5, None, 1.0, None, 1.0)
    assert -0.005 < res.miou_drop < 0
    assert "miou_drop=0.00 points" in repr(res)
    assert "**+0.00**" in res.to_markdown() and "-0.00" not in res.to_markdown()


def test_nan_int8_miou_fails_instead_of_passing() -> None:
    empty = _eval("m_int8.tflite", [[0, 0, 0], [0, 0, 0], [0, 0, 0]])
    res = CheckResult(empty, FLOAT, "model", FLOAT.miou, None, 1.0, None, None)
    assert math.isnan(res.miou_drop)
    assert not res.passed


def test_markdown_has_verdict_table_and_failures() -> None:
    md = _check(max_drop=1.0, max_class_drop=2.0).to_markdown()
    assert md.startswith("## edgeseg accuracy check: ❌ FAIL")
    assert "| metric | float | int8 | drop |" in md
    assert "| IoU `road` |" in md and "**Failed:**" in md
    assert "Pixel agreement float vs int8: **90.00%**" in md
    assert "✅ PASS" in _check(max_drop=50.0).to_markdown()


def test_json_round_trips_with_nulls_not_nan() -> None:
    import json

    d = json.loads(json.dumps(_check(1.0).to_dict()))
    assert d["passed"] is False and d["baseline"] == "model"
    assert set(d["class_drops"]) == {"road", "car", "sky"}


def test_disagreement_cell_shows_a_single_differing_pixel() -> None:
    frame = np.full((1000, 800), 128, np.uint8)  # gray, not square, much bigger than a cell
    f_map = np.zeros((1000, 800), np.uint8)
    q_map = f_map.copy()
    q_map[500, 400] = 2
    d = make_disagreement("img_1", 1 / f_map.size, frame, f_map, q_map, SPEC)
    assert len(d.cells) == 4 and all(c.shape == (CELL, CELL, 3) for c in d.cells)
    magenta = np.all(d.cells[3] == (255, 0, 255), axis=2)
    assert magenta.any()  # the one pixel survives the 4.5x downscale
    assert not magenta[:, :10].any()  # the padding beside a portrait image is not 'different'
    grid = disagreement_grid((d, d), SPEC, FLOAT, INT8)
    assert grid.shape[1] == 4 * CELL and grid.shape[0] > 2 * CELL
    assert len(np.unique(grid.reshape(-1, 3), axis=0)) > 5


def test_disagreement_rows_of_long_names_that_differ_at_the_end_are_told_apart() -> None:
    """labelmefacade's names share a 29-character start: every row read the same cut name."""
    frame = np.full((64, 64), 128, np.uint8)
    maps = np.zeros((64, 64), np.uint8)
    names = ("05june05_static_street_boston_p1010769", "05june05_static_street_boston_p1010736")
    first, second = (make_disagreement(n, 0.0, frame, maps, maps, SPEC) for n in names)
    assert not np.array_equal(first.cells[0], second.cells[0])


def test_step_summary_is_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert append_step_summary("## mine") == target
    assert target.read_text() == "earlier step\n## mine\n"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert append_step_summary("x") is None


def test_example_ci_workflow_only_uses_real_check_options() -> None:
    import re

    from typer.testing import CliRunner

    from edgeseg.cli.main import app

    workflow = Path(__file__).resolve().parents[2] / "examples" / "github-actions" / "accuracy.yml"
    text = workflow.read_text()
    command = text[text.index("edgeseg check models/") : text.index("--out-dir check-report")]
    used = set(re.findall(r"--[a-z-]+", command)) | {"--out-dir"}
    shown = CliRunner().invoke(app, ["check", "--help"], env={"COLUMNS": "200"}).output
    assert used and all(opt in shown for opt in used), (used, shown)
    assert "GITHUB_STEP_SUMMARY" in text and "upload-artifact" in text


def test_each_note_is_its_own_quote_and_the_console_wraps_it() -> None:
    """Two notes on consecutive '> ' lines were one paragraph, and the console cropped it at its
    width: the second note never showed. Each is a quote of its own, wrapped in full."""
    import io
    from dataclasses import replace

    from rich.console import Console
    from rich.markdown import Markdown

    long_note = "baseline: " + "word " * 40 + "END1"
    res = replace(_check(max_drop=50.0), notes=(long_note, "second note END2"))
    md = res.to_markdown()
    assert f"\n\n> {long_note}\n\n> second note END2" in md
    out = io.StringIO()
    Console(file=out, width=80, soft_wrap=True).print(Markdown(md), soft_wrap=False)
    assert "END1" in out.getvalue() and "END2" in out.getvalue()


def test_an_int8_model_left_from_before_a_retraining_is_refused(tmp_path: Path) -> None:
    """`train --overwrite` (or --resume) then `check` with the old model_int8.tflite compared a
    new model with an old conversion: a false regression, exit 1. convert records the SHA-256 of
    the .keras it read; check refuses a model of the same name that has changed since."""
    from edgeseg.core.errors import ModelError
    from edgeseg.core.fileio import file_sha256
    from edgeseg.core.model_metadata import embed_metadata
    from edgeseg.eval.compare import _check_not_stale

    keras = tmp_path / "model.keras"
    keras.write_bytes(b"the first training")
    record = {"source_model": "model.keras", "source_sha256": file_sha256(keras)}
    int8 = tmp_path / "model_int8.tflite"
    int8.write_bytes(embed_metadata(b"\0\0\0\0TFL3" + bytes(32), SPEC, extra=record))
    _check_not_stale(keras, int8)  # converted from this very file
    (tmp_path / "model_float.keras").write_bytes(b"the float network")
    _check_not_stale(tmp_path / "model_float.keras", int8)  # another file: compared as asked
    keras.write_bytes(b"retrained with --overwrite")
    with pytest.raises(ModelError, match=r"converted from an earlier model\.keras"):
        _check_not_stale(keras, int8)
    # against the run's float network, as the README suggests: the source beside it tells
    with pytest.raises(ModelError, match=r"earlier model\.keras beside it .*edgeseg convert"):
        _check_not_stale(tmp_path / "model_float.keras", int8)
    from edgeseg.core.model_metadata import stale_source

    assert stale_source(int8) == keras
    # another run's model.keras, the int8 model's own unchanged beside it: a mismatched pair,
    # not a retraining (it told the user to convert the other run's model)
    other = tmp_path / "other_run" / "model.keras"
    other.parent.mkdir()
    other.write_bytes(b"another run")
    keras.write_bytes(b"the first training")
    with pytest.raises(ModelError, match=r"converted from .*model\.keras, not from .*other_run"):
        _check_not_stale(other, int8)
    keras.unlink()  # no source beside it (a model copied on its own): nothing to tell
    assert stale_source(int8) is None
    _check_not_stale(tmp_path / "model_float.keras", int8)


def test_fail_lines_show_scores_in_percent_and_a_tiny_drop_as_nonzero() -> None:
    res = _check(max_drop=1.0, max_class_drop=0.0)
    first = res.failures[0]
    assert f"(float {100 * FLOAT.miou:.2f} -> int8 {100 * INT8.miou:.2f})" in first
    tiny = replace_drop(res, 0.004)
    assert "IoU drop 0.004 points > --max-class-drop 0" in " ".join(tiny.failures)
    from dataclasses import replace

    just_over = replace(replace_drop(res, 0.01297), max_class_drop=0.01)  # read '0.01 > 0.01'
    assert "IoU drop 0.013 points > --max-class-drop 0.01" in " ".join(just_over.failures)


def replace_drop(res: CheckResult, drop: float) -> CheckResult:
    """`res` with one class 0.004 points worse in int8 than in float."""
    from dataclasses import replace

    per_class = dict(res.float_per_class_iou or {})
    name = next(iter(per_class))
    per_class = {k: res.int8.per_class_iou[k] for k in per_class}
    per_class[name] = (per_class[name] or 0.0) + drop / 100
    return replace(res, float_per_class_iou=per_class, max_drop=100.0)


def test_images_where_the_models_agree_everywhere_are_not_listed_as_disagreeing() -> None:
    from edgeseg.eval.compare import _Tally

    tally = _Tally.__new__(_Tally)
    tally.heap = [(0.0, 0, "agrees"), (0.25, 1, "worst"), (0.01, 2, "slight")]  # type: ignore[list-item]
    assert tally.worst() == ("worst", "slight")


def test_eval_info_and_run_say_when_a_tflite_is_older_than_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a retraining, eval, info and run showed the old conversion's figures without a
    word while the newer model.keras sat beside it."""
    import io

    from rich.console import Console

    from edgeseg.cli import common
    from edgeseg.core.fileio import file_sha256
    from edgeseg.core.model_metadata import embed_metadata

    keras = tmp_path / "model.keras"
    keras.write_bytes(b"the first training")
    record = {"source_model": "model.keras", "source_sha256": file_sha256(keras)}
    int8 = tmp_path / "model_int8.tflite"
    int8.write_bytes(embed_metadata(b"\0\0\0\0TFL3" + bytes(32), SPEC, extra=record))
    out = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=out, width=300))
    common.warn_if_stale(int8)
    assert out.getvalue() == ""
    keras.write_bytes(b"retrained")
    common.warn_if_stale(int8)
    assert "converted from an earlier model.keras beside it (retrained since)" in out.getvalue()


def test_a_new_check_never_leaves_an_earlier_verdict_beside_its_own_files(tmp_path: Path) -> None:
    """Stopped after writing disagreement.png, the folder held the new picture beside the
    earlier run's check.json, which CI would read as this run's verdict."""
    from edgeseg.eval.compare import write_check_reports

    (tmp_path / "check.json").write_text('{"passed": true, "images": 480}')
    (tmp_path / "disagreement.png").write_bytes(b"an earlier picture")
    res = write_check_reports(_check(max_drop=100.0), tmp_path)
    assert json.loads((tmp_path / "check.json").read_text())["passed"] is True
    assert "disagreement" not in res.outputs  # none this time: the earlier one is gone too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["check.json", "check.md"]


def test_two_tflite_models_of_different_trainings_are_refused(tmp_path: Path) -> None:
    """accuracy-int8.yml after a retraining: model_float32.tflite converted again, the old
    model_int8.tflite beside it: 'FAIL: mIoU drop 6.92 points', exit 1, not a regression."""
    from edgeseg.core.errors import ModelError
    from edgeseg.core.model_metadata import embed_metadata
    from edgeseg.eval.compare import _check_same_run

    def tflite(name: str, **record: str) -> Path:
        path = tmp_path / name
        path.write_bytes(embed_metadata(b"\0\0\0\0TFL3" + bytes(32), SPEC, extra=record))
        return path

    # one quantisation-aware run: the int8 model from model.keras records the float network
    # beside it, which the float32 model was converted from
    int8 = tflite("m_int8.tflite", source_sha256="qat1", float_source_sha256="float1")
    _check_same_run(tflite("m_float32.tflite", source_sha256="float1"), int8)
    _check_same_run(tflite("plain.tflite", source_sha256="qat1"), int8)  # --no-qat: one model
    _check_same_run(tflite("old.tflite"), int8)  # converted before sources were recorded
    retrained = tflite("new_float32.tflite", source_sha256="float2")
    with pytest.raises(ModelError, match="were converted from different models"):
        _check_same_run(retrained, int8)


def test_class_names_stay_inside_their_table_cell_in_the_job_summary() -> None:
    """Names such as `wa|ter` split GitHub's table (pipes split cells even inside code), one
    with a backtick broke its code span, and <b>...</b> in a failure line rendered as HTML."""
    from edgeseg.eval.check_result import _code, _plain

    assert _code("wa|ter") == "`wa\\|ter`"
    assert _code("land `x`") == "`` land `x` ``"
    assert _plain("class <b>bld</b> dropped") == "class &lt;b&gt;bld&lt;/b&gt; dropped"
    md = _check(max_drop=1.0).to_markdown()
    rows = [line for line in md.splitlines() if line.startswith("| IoU")]
    assert rows and all(line.count("|") - line.count("\\|") == 5 for line in rows)


def test_the_report_names_the_converted_model_by_its_kind() -> None:
    """`check model.keras model_float16.tflite` said 'int8 model_float16.tflite vs float ...',
    headed its column int8 and its failure 'float 80.00 -> int8 ...'."""
    from dataclasses import replace

    res = replace(_check(max_drop=1.0), quant="float16")
    text = res.to_markdown()
    assert "float16 `m_int8.tflite` vs float `m.keras`" in text
    assert "| metric | float | float16 | drop |" in text
    assert "positive = float16 worse" in text and "float vs float16" in text
    assert "-> float16 " in res.failures[0] and "int8" not in res.failures[0]
    assert "int8" not in text.replace("m_int8", "")
    assert res.to_dict()["int8_miou"] == res.int8.miou  # the JSON keys CI reads stay


def test_a_metadata_baseline_is_headed_as_recorded_not_as_measured() -> None:
    """With no float model to score, the baseline is the score the converter recorded: its
    column said "float" as if the float model had been run on this data."""
    res = CheckResult(INT8, None, "metadata", FLOAT.miou, None, 1.0, None, None)
    md = res.to_markdown()
    assert "| metric | float (recorded) | int8 | drop |" in md
    assert "vs the float mIoU in its metadata" in md
    assert "| metric | float | int8 | drop |" in _check(max_drop=1.0).to_markdown()


def test_the_kind_a_model_is_named_by_comes_only_from_what_convert_writes(tmp_path: Path) -> None:
    """The metadata's 'quant' went unchecked into check.md's headings and table: a '|' or a
    line break in it broke the report. Only the kinds `convert --quant` writes are taken."""
    from edgeseg.core.model_metadata import embed_metadata
    from edgeseg.eval.compare import _quant_of

    model = tmp_path / "m.tflite"
    for quant, named in (("float16", "float16"), ("a|b\n## x", "int8"), (3, "int8")):
        model.write_bytes(embed_metadata(b"\0\0\0\0TFL3" + bytes(32), SPEC, extra={"quant": quant}))
        assert _quant_of(model) == named
