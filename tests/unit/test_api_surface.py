"""The API as a user walks through it: help() teaches the calls, sizes and paths are taken in the
forms the README shows, results print what matters, and bad arguments are one-line errors."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeseg.core.errors import DatasetError, EdgesegError, SourceError
from edgeseg.core.metrics import SegmentationScores
from edgeseg.core.spec import ModelSpec, parse_size
from edgeseg.data.synthetic import generate_synthetic_dataset
from edgeseg.eval.check_result import CheckResult
from edgeseg.eval.compare import compare
from edgeseg.eval.evaluate import EvalResult, check_limit, evaluate
from edgeseg.runtime.sources import ImageFolderSource, VideoFileSource, open_source
from edgeseg.runtime.stats import LatencyHistogram, StreamStats
from edgeseg.runtime.stream import StreamResult

SPEC = ModelSpec(16, 16, ("bg", "road"))


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_edgeseg_api_is_reachable_lazily() -> None:
    """help(edgeseg.api), as the README says, works after a plain `import edgeseg`."""
    _run(
        "import sys, pydoc, edgeseg\n"
        "assert 'cv2' not in sys.modules and 'edgeseg.api' not in sys.modules\n"
        "assert 'api' in dir(edgeseg)\n"
        "doc = pydoc.render_doc(edgeseg.api, renderer=pydoc.plaintext)\n"
        "assert 'def train' in doc or 'train(' in doc, doc[:500]\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )


@pytest.mark.parametrize(("name", "summary"), [("train", "Train a U-Net"), ("convert", "Convert")])
def test_help_of_a_callable_package_teaches_the_call(name: str, summary: str) -> None:
    """help(edgeseg.train) leads with the call's signature and docstring, not the package page;
    importing edgeseg and the package loads neither TensorFlow nor the API."""
    out = _run(
        "import sys, pydoc, edgeseg\n"
        f"pkg = edgeseg.{name}\n"
        "assert 'edgeseg.api' not in sys.modules\n"
        "doc = pydoc.render_doc(pkg, renderer=pydoc.plaintext)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print(pkg.__doc__.splitlines()[0])\n"
        "print(doc.index(" + repr(summary) + ") < doc.index('PACKAGE CONTENTS'))\n"
    )
    first, leads = out.splitlines()
    assert first.startswith(f"edgeseg.{name}(") and "out" in first
    assert leads == "True"


def test_callable_package_doc_keeps_the_package_doc() -> None:
    import edgeseg

    doc = edgeseg.train.__doc__ or ""
    assert doc.startswith("edgeseg.train(data")
    assert "Keras training stage" in doc  # the package's own docstring, after the call's


@pytest.mark.parametrize(
    ("size", "hw"),
    [(40, (40, 40)), ("40", (40, 40)), ("32x48", (32, 48)), ((48, 32), (48, 32))],
)
def test_synthetic_size_takes_what_train_takes(
    size: object, hw: tuple[int, int], tmp_path: Path
) -> None:
    out = generate_synthetic_dataset(tmp_path / "d", count_train=1, count_val=0, size=size)  # type: ignore[arg-type]
    assert json.loads((out / "synthetic.json").read_text())["size"] == list(hw)
    assert parse_size(size) == hw


@pytest.mark.parametrize("size", [(64,), "abc", 64.0, True, None, (64, 64, 3)])
def test_synthetic_size_refuses_other_forms_in_one_line(size: object, tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match=r"^size .*: expected N or HxW[^\n]*$"):
        generate_synthetic_dataset(tmp_path / "d", size=size)  # type: ignore[arg-type]
    assert not (tmp_path / "d").exists()


def test_synthetic_too_small_is_named_height_by_width(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape("size 7x9 (height x width)")):
        generate_synthetic_dataset(tmp_path / "d", size=(7, 9))


def test_open_source_takes_a_path(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # built, not opened
    assert isinstance(open_source(source=video), VideoFileSource)
    assert isinstance(open_source(source=tmp_path), ImageFolderSource)
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(source=tmp_path / "missing.mp4")
    with pytest.raises(SourceError, match=r"^source=0: .*camera=N$"):
        open_source(source=0)  # type: ignore[arg-type]


def test_latency_histogram_repr_shows_its_numbers() -> None:
    hist = LatencyHistogram()
    assert repr(hist) == "LatencyHistogram(count=0)"
    for ms in (10, 10, 10, 20):
        hist.add(ms / 1000)
    text = repr(hist)
    assert text.startswith("LatencyHistogram(count=4, mean_ms=12.500, p50_ms=")
    assert "object at 0x" not in text and "max_ms=20.000" in text


def test_stream_result_repr_shows_frames_and_fps(tmp_path: Path) -> None:
    stats = StreamStats(started=0.0, finished=10.0, processed=300, dropped=2)
    stats.record("invoke", 0.012)
    result = StreamResult(stats, "end", video=tmp_path / "out.mp4")
    text = repr(result)
    assert text.startswith("StreamResult(frames=300, fps=30.00, dropped=2, elapsed_s=10.00, ")
    assert re.search(r"invoke_p50_ms=1[12]\.\d\d, stopped_by='end'", text), text
    assert f"video={str(tmp_path / 'out.mp4')!r}" in text
    assert "object at 0x" not in text and "masks=" not in text


def _eval() -> EvalResult:
    scores = SegmentationScores(np.array([0.5, 0.7]), 0.6, 0.9, 0.65, 100)
    return EvalResult(Path("m.tflite"), Path("data/val"), SPEC, scores, 4, 5.0, np.eye(2))


def test_eval_result_has_the_attributes_its_repr_shows() -> None:
    ev = _eval()
    assert ev.pixel_accuracy == 0.9 and ev.fw_iou == 0.65 and ev.miou == 0.6
    for name in re.findall(r"(\w+)=", repr(ev)):
        assert hasattr(ev, name), name


@pytest.mark.parametrize("limit", [1.5, True, False, -1, 0, "2"])
def test_limit_is_checked_before_any_work(limit: object, tmp_path: Path) -> None:
    """A float, bool, string or number below 1 is one error naming `limit`, raised before the
    model is opened (these paths do not exist)."""
    message = r"^limit=.*: pass a whole number of images >= 1, or None for all$"
    with pytest.raises(EdgesegError, match=message):
        evaluate(tmp_path / "m.tflite", tmp_path, limit=limit)  # type: ignore[arg-type]
    with pytest.raises(EdgesegError, match=message):
        compare(None, tmp_path / "m.tflite", tmp_path, 1.0, limit=limit)  # type: ignore[arg-type]


def test_check_limit_passes_whole_numbers() -> None:
    assert check_limit(None) is None
    assert check_limit(3) == 3
    assert check_limit(np.int64(2)) == 2 and type(check_limit(np.int64(2))) is int


@pytest.mark.parametrize(
    "member",
    [
        EvalResult.miou,
        EvalResult.per_class_iou,
        EvalResult.to_dict,
        CheckResult.passed,
        CheckResult.to_dict,
        CheckResult.to_markdown,
        ModelSpec.to_dict,
        ModelSpec.from_dict,
        ModelSpec.to_json,
        ModelSpec.load,
        ModelSpec.num_classes,
    ],
)
def test_public_members_have_docstrings(member: object) -> None:
    assert (inspect.getdoc(member) or "").strip()


def test_model_cost_methods_have_docstrings() -> None:
    """Read from the source: importing edgeseg.train.cost loads Keras."""
    path = Path(__file__).parents[2] / "edgeseg" / "train" / "cost.py"
    tree = ast.parse(path.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ModelCost"]
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    for name in ("to_dict", "from_dict"):
        assert ast.get_docstring(methods[name]), name
