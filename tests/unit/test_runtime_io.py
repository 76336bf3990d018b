"""Sources, drawing and file outputs on real images from ../shared/data (no camera, no model)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from videos import write_video

from edgeseg.core.errors import SourceError
from edgeseg.core.processing import read_image
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.outputs import (
    MaskSink,
    OutputError,
    VideoSink,
    check_gui,
    opencv_has_gui,
    render,
)
from edgeseg.runtime.sources import (
    CameraSource,
    ImageFolderSource,
    PicameraSource,
    VideoFileSource,
    open_source,
)


@pytest.fixture
def video(membrane_data: Path, tmp_path: Path) -> Path:
    images = sorted((membrane_data / "val" / "images").iterdir())
    return write_video(tmp_path / "clip.avi", images)


def test_video_file_source_reads_every_frame(video: Path) -> None:
    with VideoFileSource(video) as src:
        assert src.fps == pytest.approx(10.0)
        frames = []
        while (frame := src.read()) is not None:
            frames.append(frame)
    assert len(frames) == 6 and frames[0].shape == (128, 128, 3)


def test_unreadable_video_and_missing_camera_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceError, match=r"bad.avi: cannot read video"):
        VideoFileSource(bad).open()
    with pytest.raises(SourceError, match="not found"):
        VideoFileSource(tmp_path / "none.mp4").open()
    with pytest.raises(SourceError, match="camera 97: cannot open"):
        CameraSource(97).open()


def test_open_source_picks_exactly_one(tmp_path: Path, video: Path) -> None:
    assert isinstance(open_source(source=str(video)), VideoFileSource)
    assert isinstance(open_source(source=str(tmp_path)), ImageFolderSource)
    with pytest.raises(SourceError, match="exactly one"):
        open_source(camera=0, source=str(video))
    with pytest.raises(SourceError, match="exactly one"):
        open_source()
    with pytest.raises(SourceError, match="no such file"):
        open_source(source=str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="only rtsp"):
        open_source(source="ftp://example/x")


def test_image_folder_source_keeps_each_image_size(aerial_data: Path) -> None:
    folder = aerial_data / "val" / "images"
    with ImageFolderSource(folder) as src:
        first = src.read()
    assert first is not None
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    assert first.shape == read_image(files[0]).shape


@pytest.mark.skipif("picamera2" in sys.modules, reason="picamera2 is installed here")
def test_picamera_missing_says_how_to_install() -> None:
    with pytest.raises(SourceError, match=r"apt install python3-picamera2.*system-site-packages"):
        PicameraSource().open()


def test_a_picamera2_that_fails_to_import_is_one_error_with_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apt's picamera2 under a numpy 2 the venv's pip installed: 'numpy.dtype size changed'
    was a traceback (exit 1), or, as an ImportError, 'needs picamera2: apt install ...'."""
    package = tmp_path / "picamera2"
    package.mkdir()
    (package / "__init__.py").write_text(
        "raise ValueError('numpy.dtype size changed, may indicate binary incompatibility')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SourceError, match=r"installed but cannot be imported \(numpy\.dtype size"):
        PicameraSource().open()


@pytest.fixture
def spec() -> ModelSpec:
    return ModelSpec(64, 64, ("membrane", "cell_interior"), channels=1)


def test_render_views(spec: ModelSpec) -> None:
    frame = np.full((48, 80, 3), 100, np.uint8)
    cmap = np.zeros((48, 80), np.uint8)
    cmap[:, 40:] = 1
    over = render(frame, cmap, spec, "overlay", hud=["12.0 FPS"])
    assert over.shape == (48, 80, 3)
    side = render(frame, cmap, spec, "side")
    assert side.shape == (48, 160, 3)
    mask = render(frame, cmap, spec, "mask")
    # bottom-left pixel is away from legend and HUD: pure palette colour of class 0 (BGR)
    assert tuple(mask[-1, 0]) == tuple(spec.palette[0][::-1])
    assert tuple(mask[-1, -1]) == tuple(spec.palette[1][::-1])
    with pytest.raises(OutputError, match="--view"):
        render(frame, cmap, spec, "heatmap")


def test_video_sink_writes_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    sink = VideoSink(out, fps=12.0)
    for i in range(5):
        sink.write(np.full((64, 96, 3), i * 40, np.uint8))
    assert not out.exists() and sink.tmp.exists()  # still the partial name while writing
    assert sink.close() == out
    assert not sink.tmp.exists()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    cap.release()
    with pytest.raises(OutputError, match=r"\.avi"):
        VideoSink(tmp_path / "out.gif", 10)


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_a_video_cut_short_by_a_full_disk_is_a_write_error(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a full disk AVI and Matroska files cut short still open and play their first frames:
    9 of 60 written, and `run` said it saved the video and exited 0."""
    from edgeseg.core.errors import WriteError

    out = tmp_path / f"out{suffix}"
    sink = VideoSink(out, fps=10.0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        sink.write(rng.integers(0, 256, (96, 128, 3), np.uint8))
    check = VideoSink._check_written

    def cut_short(self: VideoSink) -> None:  # what the full disk left of the file
        assert self.tmp is not None
        with self.tmp.open("r+b") as fh:
            fh.truncate(self.tmp.stat().st_size // 3)
        check(self)

    monkeypatch.setattr(VideoSink, "_check_written", cut_short)
    monkeypatch.setattr(VideoSink, "_disk_full", lambda self: True)
    with pytest.raises(WriteError, match="no space left on the device"):
        sink.close()
    assert list(tmp_path.iterdir()) == []  # neither the video nor its temp file


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_mjpg_video_is_encoded_by_libjpeg_and_plays_back(tmp_path: Path, suffix: str) -> None:
    """MJPG frames are JPEG-encoded by cv2.imencode and muxed raw: the file plays back in OpenCV
    with every frame, the rate, and the pixels (within JPEG error) of what was written."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120))
    frames = [np.roll(base, 8 * i, axis=1) for i in range(6)]
    out = tmp_path / f"out{suffix}"
    sink = VideoSink(out, fps=20.0)
    for f in frames:
        sink.write(f)
    assert sink.raw_jpeg
    assert sink.close() == out
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(20.0)
    back = []
    while (got := cap.read())[0]:
        back.append(got[1])
    cap.release()
    assert len(back) == len(frames)
    for i, read in enumerate(
        back
    ):  # each frame in its place, within JPEG error of what was written
        errors = [float(np.abs(read.astype(int) - f).mean()) for f in frames]
        assert int(np.argmin(errors)) == i and errors[i] < 8.0


def test_mjpg_video_falls_back_to_opencv_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenCV without raw writing (older than 4.9) still writes the video, encoding it itself."""
    monkeypatch.delattr(cv2, "VIDEOWRITER_PROP_RAW_VIDEO", raising=False)
    sink = VideoSink(tmp_path / "out.avi", fps=10.0)
    for i in range(3):
        sink.write(np.full((48, 64, 3), 60 * i, np.uint8))
    assert not sink.raw_jpeg
    assert sink.close() == tmp_path / "out.avi"
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


def test_video_sink_measures_fps_for_live_sources(tmp_path: Path) -> None:
    sink = VideoSink(tmp_path / "live.avi", fps=None)
    for _ in range(3):  # fewer than the probe: flushed on close at a default rate
        sink.write(np.zeros((32, 32, 3), np.uint8))
    assert sink.close() == tmp_path / "live.avi" and sink.frames == 3


def test_mask_sink_names_by_frame_number(tmp_path: Path) -> None:
    sink = MaskSink(tmp_path / "masks")
    cmap = np.array([[0, 1], [4, 2]], np.uint8)
    sink.write(17, cmap)
    back = cv2.imread(str(tmp_path / "masks" / "000017.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, cmap)
    assert [p.name for p in (tmp_path / "masks").iterdir()] == ["000017.png"]


def test_mask_sink_leaves_no_empty_folder_it_made(tmp_path: Path) -> None:
    """A run that fails before its first frame leaves no --save-masks folder behind; a folder
    that was there before stays, and one with masks in it is the result."""
    made = MaskSink(tmp_path / "new")
    assert (tmp_path / "new").is_dir() and made.close() is None
    assert not (tmp_path / "new").exists()
    nested = MaskSink(tmp_path / "nest" / "a" / "masks")  # its parents too (they were left)
    assert nested.close() is None and list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    assert MaskSink(tmp_path / "old").close() is None and (tmp_path / "old").is_dir()
    used = MaskSink(tmp_path / "used")
    used.write(0, np.zeros((2, 2), np.uint8))
    assert used.close() == tmp_path / "used" and (tmp_path / "used" / "000000.png").is_file()


def test_a_dataset_folder_as_source_names_a_folder_of_its_images(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            (tmp_path / split / "images").mkdir(parents=True, exist_ok=True)
            image = np.zeros((8, 8, 3), np.uint8)
            assert cv2.imwrite(str(tmp_path / split / "images" / f"{i}.png"), image)
    with pytest.raises(SourceError) as info:
        ImageFolderSource(tmp_path).open()
    assert str(info.value).endswith(
        f"; pass a folder that holds them, such as {tmp_path / 'val' / 'images'} (2 images)"
    )
    with pytest.raises(SourceError) as info:
        ImageFolderSource(tmp_path / "val").open()  # val/ itself: one level further down
    assert str(info.value).endswith(f"such as {tmp_path / 'val' / 'images'} (2 images)")
    ade = tmp_path / "ade"  # annotations/ sorts before images/: a mask folder is never named
    for folder in ("annotations", "Images"):
        (ade / folder / "training").mkdir(parents=True)
        assert cv2.imwrite(str(ade / folder / "training" / "a.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(SourceError) as info:
        ImageFolderSource(ade).open()
    assert str(info.value).endswith(f"such as {ade / 'Images' / 'training'} (1 image)")
    # Roboflow's split holds X.jpg + X_mask.png: the hint counts the frames a run reads (it
    # said 4 images for 2)
    rf = tmp_path / "rf"
    for name in ("a.jpg", "a_mask.png", "b.jpg", "b_mask.png"):
        (rf / "valid").mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(rf / "valid" / name), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError) as info:
        ImageFolderSource(rf).open()
    assert str(info.value).endswith(f"such as {rf / 'valid'} (2 images)")


def test_a_split_with_masks_beside_its_images_runs_the_images_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Roboflow's valid/ holds X.jpg + X_mask.png: `run --source valid/` runs X.jpg and says it
    skipped the masks; a picture whose name merely ends like a mask (no partner) still runs."""
    for name in ("a.jpg", "a_mask.png", "b.jpg", "b_mask.png", "lonely_seg.png"):
        assert cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    source = ImageFolderSource(tmp_path)
    with caplog.at_level("WARNING", logger="edgeseg.runtime"):
        source.open()
    assert all(source.read() is not None for _ in range(3)) and source.read() is None
    assert [source.frame_name(i) for i in range(3)] == ["a", "b", "lonely_seg"]
    assert "skipped 2 mask file(s) beside their images (such as a_mask.png)" in caplog.text


def test_a_split_of_sample_folders_runs_each_samples_image_named_by_its_folder(
    tmp_path: Path,
) -> None:
    """YCOR's valid/iid000123/rgb.jpg + labels.png: `run --source valid/` runs rgb.jpg of each
    sample (never the label image) and names the frames after the folders; the dataset root
    points at that split, not at one sample folder."""
    for split in ("train", "valid"):
        for i in range(2):
            sample = tmp_path / split / f"iid{i:06d}"
            sample.mkdir(parents=True)
            assert cv2.imwrite(str(sample / "rgb.jpg"), np.full((8, 8, 3), 200, np.uint8))
            assert cv2.imwrite(str(sample / "labels.png"), np.zeros((8, 8, 3), np.uint8))
    source = ImageFolderSource(tmp_path / "valid")
    source.open()
    frames = [source.read(), source.read(), source.read()]
    assert frames[2] is None and all(f is not None and f.mean() > 150 for f in frames[:2])
    assert [source.frame_name(i) for i in range(2)] == ["iid000000", "iid000001"]
    with pytest.raises(SourceError) as info:
        ImageFolderSource(tmp_path).open()
    assert str(info.value).endswith(f"such as {tmp_path / 'valid'} (2 samples)")


@pytest.mark.skipif(opencv_has_gui(), reason="this OpenCV build has a GUI")
def test_headless_opencv_says_install_gui_extra() -> None:
    with pytest.raises(OutputError, match=r"edgeseg\[gui\].*--headless.*--serve"):
        check_gui()


# === MJPG videos decoded from their JPEG packets ===


def _street_frames(facade_data: Path) -> list[np.ndarray]:
    images = sorted((facade_data / "train" / "images").iterdir())[:8]
    return [cv2.resize(read_image(p), (160, 120), interpolation=cv2.INTER_AREA) for p in images]


@pytest.fixture
def color_video(facade_data: Path, tmp_path: Path) -> Path:
    """An MJPG .avi of 8 real colour street scenes, written by OpenCV's own MJPG encoder."""
    path = tmp_path / "street.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (160, 120))
    for frame in _street_frames(facade_data):
        writer.write(frame)
    writer.release()
    return path


def _opencv_frames(video: Path) -> list[np.ndarray]:
    """The frames as OpenCV's video backend decodes them (FFmpeg's MJPEG decoder + swscale)."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames


def _source_frames(source: VideoFileSource) -> list[np.ndarray]:
    with source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    return frames


def test_mjpg_video_is_decoded_from_its_jpeg_packets(color_video: Path, facade_data: Path) -> None:
    """Every frame, in order, decoded by libjpeg-turbo from the same JPEGs OpenCV's backend
    decodes: the pictures differ only by chroma upsampling and rounding, and libjpeg-turbo's are
    at least as close to the frames written (measured: 0.3-0.7 dB closer)."""
    source = VideoFileSource(color_video)
    with source:
        assert source.jpeg_packets and source.fps == pytest.approx(15.0)
    frames = _source_frames(source)
    reference = _opencv_frames(color_video)
    assert len(frames) == len(reference) == 8
    written = _street_frames(facade_data)
    for i, frame in enumerate(frames):
        assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
        assert cv2.PSNR(frame, reference[i]) > 36.0
        assert cv2.PSNR(frame, written[i]) >= cv2.PSNR(reference[i], written[i])
        errors = [float(np.abs(frame.astype(int) - r).mean()) for r in reference]
        assert int(np.argmin(errors)) == i  # each frame in its place
    again = _source_frames(source)  # reopened: the same frames again
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))


def test_video_decoding_falls_back_to_opencv(
    color_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where packets are unavailable (another codec, an OpenCV that cannot) or the first one does
    not decode, OpenCV decodes: exactly its frames."""
    reference = _opencv_frames(color_video)
    mp4 = tmp_path / "street.mp4"
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter.fourcc(*"mp4v"), 15.0, (160, 120))
    for frame in reference:
        writer.write(frame)
    writer.release()
    source = VideoFileSource(mp4)
    frames = _source_frames(source)
    assert not source.jpeg_packets
    assert len(frames) == 8 and all(
        np.array_equal(a, b) for a, b in zip(frames, _opencv_frames(mp4), strict=True)
    )
    for patch in ("jpeg_packets_on", "imdecode"):
        with monkeypatch.context() as m:
            if patch == "jpeg_packets_on":
                m.setattr("edgeseg.runtime.sources.jpeg_packets_on", lambda cap: False)
            else:
                m.setattr(cv2, "imdecode", lambda *args: None)
            source = VideoFileSource(color_video)
            frames = _source_frames(source)
        assert not source.jpeg_packets, patch
        assert len(frames) == 8 and all(
            np.array_equal(a, b) for a, b in zip(frames, reference, strict=True)
        ), patch


def test_a_packet_that_is_not_a_jpeg_is_skipped_and_counted(
    color_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode, calls = cv2.imdecode, []

    def flaky(buf: np.ndarray, flags: int) -> np.ndarray | None:
        calls.append(1)
        return None if len(calls) == 3 else decode(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", flaky)
    source = VideoFileSource(color_video)
    frames = _source_frames(source)
    assert source.jpeg_packets and source.skipped == 1 and len(frames) == 7


def test_outputs_say_what_they_cannot_keep(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A mask folder from an earlier run keeps its other files, and a video has one frame size:
    both are said once instead of a mix of runs or squashed frames nobody was told about."""
    from edgeseg.runtime.outputs import MaskSink

    (tmp_path / "m").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "m" / f"old{i}.png"), np.zeros((4, 4), np.uint8))
    with caplog.at_level("WARNING"):
        MaskSink(tmp_path / "m")
        MaskSink(tmp_path / "fresh")
    assert caplog.text.count("already holds 3 PNG(s)") == 1
    caplog.clear()
    sink = VideoSink(tmp_path / "v.avi", fps=10.0)
    with caplog.at_level("WARNING"):
        for shape in ((48, 64, 3), (60, 64, 3), (30, 40, 3)):
            sink.write(np.zeros(shape, np.uint8))
    sink.close()
    assert caplog.text.count("is resized to the video's 64x48") == 1


def test_frame_names_stay_with_their_images_when_a_file_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreadable file used to shift every later --save-masks name by one (f003's mask saved
    as f002a.png); macOS `._*` files were read as frames (and named the masks); a.jpg and a.png
    shared one name, so one mask overwrote the other."""
    for i in range(4):
        assert cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), np.full((8, 8, 3), 10 * i, np.uint8))
    (tmp_path / "f001a.png").write_bytes(b"")  # unreadable
    (tmp_path / "._f000.png").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble
    assert cv2.imwrite(str(tmp_path / "f003.jpg"), np.full((8, 8, 3), 250, np.uint8))
    source = ImageFolderSource(tmp_path)
    source.open()
    with caplog.at_level("WARNING", logger="edgeseg.runtime"):
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert [f.mean() for f in frames] == pytest.approx([0, 10, 20, 250, 30], abs=2)
    assert [source.frame_name(i) for i in range(5)] == [
        "f000",
        "f001",
        "f002",
        "f003.jpg",
        "f003.png",
    ]
    assert source.skipped == 1 and "f001a.png" in caplog.text and "._f000" not in caplog.text


def test_an_empty_recording_and_an_unreadable_single_image_are_said_as_such(
    tmp_path: Path,
) -> None:
    """A valid video with no frames was 'corrupt or a codec OpenCV lacks'; one unreadable
    image as --source warned 'skipped' and then 'none of its 1 image(s) can be read'."""
    from edgeseg.core.errors import SourceError
    from edgeseg.runtime.sources import ImageFolderSource

    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 64)).release()
    with pytest.raises(SourceError, match="the video holds no frames"):
        VideoFileSource(empty).open()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    source = ImageFolderSource(bad)
    source.open()
    with pytest.raises(SourceError, match=r"^--source .*bad\.png: cannot read image"):
        source.read()
    assert source.skipped == 0
