"""What a run produces: the drawn view (overlay / side / mask with legend and HUD), an OpenCV
window, an overlay video written atomically, and one index PNG mask per frame."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from edgeseg.core.errors import OutputError as OutputError  # re-exported: stream imports it here
from edgeseg.core.errors import WriteError
from edgeseg.core.fileio import (
    atomic_path,
    check_parent,
    make_dirs,
    remove_empty_dirs,
    write_image,
)
from edgeseg.core.processing import (
    Placement,
    blend,
    colorize,
    colorize_to_frame,
    draw_legend,
    overlay,
    palette_lut,
)
from edgeseg.core.spec import ModelSpec

log = logging.getLogger(__name__)

View = Literal["overlay", "side", "mask"]
VIEWS: tuple[str, ...] = ("overlay", "side", "mask")
_FPS_PROBE = 16  # frames buffered to measure a live source's processing rate
_LOW_SPACE = 1 << 20  # below this much free space, a failed video write is blamed on it
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
JPEG_QUALITY = 90  # MJPG video frames, encoded by cv2.imencode (libjpeg-turbo)


def render(
    frame: np.ndarray,
    class_map: np.ndarray,
    spec: ModelSpec,
    view: str = "overlay",
    hud: list[str] | None = None,
    alpha: float = 0.5,
    legend: bool = True,
) -> np.ndarray:
    """Frame + class map -> BGR picture: palette overlay, side by side, or the mask alone.

    legend=False (and hud=None) leaves the pixels clean, for the live page that shows both in HTML.
    """
    if view not in VIEWS:
        raise OutputError(f"--view {view!r}: choose one of {', '.join(VIEWS)}")
    if view == "overlay":
        image = overlay(frame, class_map, spec.palette, alpha)
    else:
        color = colorize(class_map, spec.palette)
        if view == "side":
            left = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
            image = np.hstack([left, color])
        else:
            image = color
    image = np.ascontiguousarray(image)
    return annotate(image, spec, hud) if legend else image


def annotate(image: np.ndarray, spec: ModelSpec, hud: list[str] | None = None) -> np.ndarray:
    """Burn the legend (and the HUD lines, if any) into a drawn view, in place."""
    draw_legend(image, spec.class_names, spec.palette)
    if hud:
        draw_hud(image, hud)
    return image


class Painter:
    """`render` for a stream: the palette table and the legend are built once, and the class map
    is coloured at model size then resized once, so each frame costs one LUT, one resize, one
    blend and the HUD text. Draws the same picture as `render` on the frame-size class map.

    Not thread-safe: the overlay view keeps one frame-size colour buffer across frames (a fresh
    ~1 MB array per frame costs page faults once the allocator hands the memory back)."""

    def __init__(self, spec: ModelSpec, view: str = "overlay", alpha: float = 0.5) -> None:
        if view not in VIEWS:
            raise OutputError(f"--view {view!r}: choose one of {', '.join(VIEWS)}")
        self.spec, self.view, self.alpha = spec, view, alpha
        self.lut = palette_lut(spec.palette)
        self._legend: dict[tuple[int, int], tuple[int, int, np.ndarray] | None] = {}
        self._color: np.ndarray | None = None  # overlay view: the colour layer, reused

    def draw(
        self,
        frame: np.ndarray,
        class_map: np.ndarray,
        placement: Placement,
        hud: list[str] | None = None,
        legend: bool = True,
        in_place: bool = False,
    ) -> np.ndarray:
        """Frame + MODEL-size class map (with its placement) -> the drawn BGR view.

        legend=False (and hud=None) leaves the pixels clean, for the live page that shows both in
        HTML. in_place=True draws the overlay over `frame` itself (a BGR frame the caller no
        longer needs) instead of a new array."""
        if self.view == "overlay":
            shape = (placement.src_height, placement.src_width, 3)
            if self._color is None or self._color.shape != shape:
                self._color = np.empty(shape, np.uint8)
            color = colorize_to_frame(class_map, placement, self.lut, out=self._color)
            out = frame if in_place and frame.shape == shape and frame.flags.writeable else None
            image = blend(frame, color, self.alpha, out=out)
        elif self.view == "side":
            color = colorize_to_frame(class_map, placement, self.lut)
            left = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
            image = np.hstack([left, color])
        else:  # the mask view returns the colour layer itself: a new array each frame
            image = np.ascontiguousarray(colorize_to_frame(class_map, placement, self.lut))
        return self.annotate(image, hud) if legend else image

    def annotate(self, image: np.ndarray, hud: list[str] | None = None) -> np.ndarray:
        """Paste the legend (and the HUD lines, if any) into a drawn view, in place."""
        self._paste_legend(image)
        if hud:
            draw_hud(image, hud)
        return image

    def _paste_legend(self, image: np.ndarray) -> None:
        shape = (image.shape[0], image.shape[1])
        if shape not in self._legend:
            self._legend[shape] = self._legend_patch(shape)
        patch = self._legend[shape]
        if patch is None:  # text spills outside its opaque box: draw it each frame
            draw_legend(image, self.spec.class_names, self.spec.palette)
            return
        top, left, pixels = patch
        image[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels

    def _legend_patch(self, shape: tuple[int, int]) -> tuple[int, int, np.ndarray] | None:
        """The legend as an opaque patch: drawn on black and on white, the pixels that agree are
        the legend's own; if they form one solid box, pasting it equals drawing it."""
        names, palette = self.spec.class_names, self.spec.palette
        dark = draw_legend(np.zeros((*shape, 3), np.uint8), names, palette)
        light = draw_legend(np.full((*shape, 3), 255, np.uint8), names, palette)
        own = (dark == light).all(axis=2)
        rows, cols = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
        if not (dark != 0).any():  # no legend on a frame this small: paste nothing
            return 0, 0, np.zeros((0, 0, 3), np.uint8)
        if rows.size == 0:
            return None
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        touched = (dark != 0).any(axis=2) | (light != 255).any(axis=2)
        if not own[box].all() or touched.sum() != own[box].size:
            return None
        return int(rows[0]), int(cols[0]), dark[box].copy()


def draw_hud(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Text lines on a dark band in the top-left corner, in place."""
    scale = max(0.35, min(image.shape[:2]) / 900)
    line_h = int(20 * scale / 0.45)
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for t in lines)
    cv2.rectangle(image, (0, 0), (width + 10, line_h * len(lines) + 6), (0, 0, 0), -1)
    for i, text in enumerate(lines):
        cv2.putText(
            image,
            text,
            (5, (i + 1) * line_h),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return image


class VideoSink:
    """Overlay video: written to a hidden temp file beside the target (core.fileio.atomic_path),
    checked to play back, then renamed on close.

    With fps=None (live sources) the first frames are buffered to measure the processing rate,
    so the saved video plays at the speed it was processed, not at the camera's nominal rate.
    """

    def __init__(self, path: str | Path, fps: float | None) -> None:
        self.path = Path(path)
        fourcc = _FOURCC.get(self.path.suffix.lower())
        if fourcc is None:
            kinds = ", ".join([*sorted(_FOURCC), *IMAGE_SAVE_SUFFIXES])
            raise OutputError(f"--save {self.path}: use one of {kinds}")
        check_parent(self.path, label="--save")  # a missing folder is created with the file
        self.fourcc = cv2.VideoWriter.fourcc(*fourcc)
        self.fps = fps if fps and fps > 0 else None
        self._target: contextlib.AbstractContextManager[Path] | None = None
        self.tmp: Path | None = None
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)
        self.raw_jpeg = False  # frames JPEG-encoded here and muxed as they are (see _open)
        self._pending: list[tuple[float, np.ndarray]] = []
        self._resized = False  # warned that a frame of another size was resized
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self._writer is None and self.fps is None:
            self._pending.append((time.perf_counter(), image))
            if len(self._pending) >= _FPS_PROBE:
                self._flush_pending()
            return
        self._write(image)

    def _flush_pending(self) -> None:
        stamps = [t for t, _ in self._pending]
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
        self.fps = (len(stamps) - 1) / span if span > 0 else 15.0
        pending, self._pending = self._pending, []
        for _, image in pending:
            self._write(image)

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        """Create the temp file first: an unwritable folder is named as such (WriteError)."""
        self._target = atomic_path(self.path, label="--save", mkdir=True, sweep=True)
        self.tmp = self._target.__enter__()
        writer = self._raw_mjpeg_writer(size)
        self.raw_jpeg = writer is not None
        if writer is None:
            writer = cv2.VideoWriter(str(self.tmp), self.fourcc, self.fps or 15.0, size)
        if not writer.isOpened():
            self._discard()
            if self._disk_full():
                raise WriteError(f"--save {self.path}: cannot write (no space left on the device)")
            raise OutputError(f"--save {self.path}: OpenCV cannot write this video format")
        return writer

    def _raw_mjpeg_writer(self, size: tuple[int, int]) -> cv2.VideoWriter | None:
        """For MJPG: a writer that muxes already-encoded JPEG frames (OpenCV's FFmpeg backend with
        VIDEOWRITER_PROP_RAW_VIDEO), so each frame is encoded by cv2.imencode's libjpeg-turbo at
        about a third of the CPU of FFmpeg's MJPEG encoder. None where this OpenCV build cannot
        (older than 4.9, or without FFmpeg): the caller lets OpenCV encode instead."""
        raw = getattr(cv2, "VIDEOWRITER_PROP_RAW_VIDEO", None)
        if self.fourcc != cv2.VideoWriter.fourcc(*"MJPG") or raw is None or self.tmp is None:
            return None
        params = [int(raw), 1]
        writer = cv2.VideoWriter(
            str(self.tmp), cv2.CAP_FFMPEG, self.fourcc, self.fps or 15.0, size, params
        )
        if writer.isOpened():
            return writer
        writer.release()
        return None

    def _write(self, image: np.ndarray) -> None:
        size = (image.shape[1], image.shape[0])
        if self._writer is None:
            self._writer, self._size = self._open(size), size
        if size != self._size:  # a camera may change resolution after a reconnect
            if not self._resized:
                self._resized = True
                log.warning(
                    "--save %s: a %dx%d frame is resized to the video's %dx%d (a video has one "
                    "size; --save-masks keeps each frame's own)",
                    self.path,
                    *size,
                    *self._size,
                )
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        if self.raw_jpeg:
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise OutputError(f"--save {self.path}: OpenCV cannot encode this frame as JPEG")
            self._writer.write(jpeg.reshape(1, -1))
        else:
            self._writer.write(image)
        self.frames += 1

    def _check_written(self) -> None:
        """OpenCV writes fail silently (a full disk leaves a video with no index): read it back.
        On a (nearly) full disk every frame is counted too: AVI and Matroska cut short by it
        still open and play their first frames (9 of 60 written, and the run said it saved)."""
        assert self.tmp is not None
        cap = cv2.VideoCapture(str(self.tmp))
        try:
            ok = cap.isOpened() and cap.read()[0]
            if ok and self._disk_full():
                played = 1
                while cap.grab():
                    played += 1
                ok = played >= self.frames
        finally:
            cap.release()
        if ok:
            return
        full = self._disk_full()
        cause = "no space left on the device" if full else "OpenCV wrote a video it cannot read"
        raise WriteError(f"--save {self.path}: cannot write ({cause})")

    def _disk_full(self) -> bool:
        try:
            return shutil.disk_usage(self.path.parent).free < _LOW_SPACE
        except OSError:
            return False

    def close(self) -> Path | None:
        """Finalise: the video appears under its real name only once it holds frames that play."""
        if self._pending:
            self._flush_pending()
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        try:
            self._check_written()
        except BaseException:
            self._discard()
            raise
        assert self._target is not None
        target, self._target = self._target, None
        target.__exit__(None, None, None)
        return self.path

    def _discard(self) -> None:
        """Remove the temp file (atomic_path's failure branch)."""
        if self._target is not None:
            target, self._target = self._target, None
            target.__exit__(_Discard, _Discard(), None)

    def abort(self) -> None:
        self._pending = []
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._discard()


class _Discard(Exception):
    """Thrown into atomic_path to make it delete its temp file."""


class MaskSink:
    """One single-channel PNG of class indices per frame, named after the source image when the
    source has names (`names(frame_no)`), else by frame number."""

    def __init__(
        self, folder: str | Path, names: Callable[[int], str | None] | None = None
    ) -> None:
        self.folder = Path(folder)
        self.names = names
        self._made = make_dirs(self.folder, label="--save-masks")  # with the parents made
        if not self._made and (old := sum(1 for _ in self.folder.glob("*.png"))):
            log.warning(
                "--save-masks %s already holds %d PNG(s): masks of the same name are replaced, "
                "the others stay (use an empty folder to keep only this run's)",
                self.folder,
                old,
            )
        self.frames = 0

    def close(self) -> Path | None:
        """The folder, or None when no mask was written; a folder this run made is then
        removed, so a run that fails before its first frame leaves nothing behind."""
        if self.frames:
            return self.folder
        remove_empty_dirs(self._made)  # not empty after all (someone else wrote there): kept
        return None

    def path_for(self, frame_no: int) -> Path:
        name = self.names(frame_no) if self.names is not None else None
        return self.folder / f"{name or f'{frame_no:06d}'}.png"

    def write(self, frame_no: int, class_map: np.ndarray) -> None:
        """Encoded in memory, written atomically: a full disk is a WriteError, not a 0-byte PNG."""
        write_image(self.path_for(frame_no), class_map, label="--save-masks")
        self.frames += 1


IMAGE_SAVE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageSink:
    """`--save out.png|jpg` for a single image: the drawn view, written atomically on close."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_parent(self.path, label="--save")
        self.fps: float | None = None  # interface of VideoSink; unused
        self.frames = 0
        self._image: np.ndarray | None = None

    def write(self, image: np.ndarray) -> None:
        if self._image is not None:
            self._image = None  # never write a half-true result
            raise OutputError(
                f"--save {self.path}: an image file holds one frame but the source gave more; "
                "save a video (.mp4, .avi) or use --save-masks DIR"
            )
        self._image = image
        self.frames = 1

    def close(self) -> Path | None:
        if self._image is None:
            return None
        from edgeseg.core.fileio import write_image

        write_image(self.path, self._image, label="--save", mkdir=True)
        return self.path

    def abort(self) -> None:
        self._image = None


def open_save_sink(path: str | Path, fps: float | None) -> VideoSink | ImageSink:
    """`--save`: an image file (.png, .jpg) for one frame, else a video."""
    if Path(path).suffix.lower() in IMAGE_SAVE_SUFFIXES:
        return ImageSink(path)
    return VideoSink(path, fps)


def opencv_has_gui() -> bool:
    """Whether this OpenCV build has a GUI backend (opencv-python-headless has none)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "NO")
    return True


def no_window_reason() -> str | None:
    """Why no window can open here (an OpenCV without GUI, or no display), or None when one may."""
    if not opencv_has_gui():
        return "this OpenCV has no GUI (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display to open a window on (DISPLAY is unset)"
    return None


def check_gui() -> None:
    """OutputError unless a window can be opened here: a GUI-enabled OpenCV and a display."""
    headless = "--headless --save out.mp4 or --serve 127.0.0.1:8080"
    reason = no_window_reason()
    if reason is not None:
        fix = '`pip install "edgeseg[gui]"` (opencv-python), or ' if not opencv_has_gui() else ""
        raise OutputError(f"{reason}: {fix}run with {headless}")
    try:
        cv2.namedWindow(WindowSink.title, cv2.WINDOW_NORMAL)
    except cv2.error as exc:
        raise OutputError(f"cannot open a window ({exc.err}): run with {headless}") from None


class WindowSink:
    """An OpenCV window; `show` returns False once the user pressed q or Esc or closed it."""

    title = "edgeseg"

    def __init__(self) -> None:
        check_gui()

    def show(self, image: np.ndarray) -> bool:
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        cv2.destroyAllWindows()
