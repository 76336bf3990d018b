"""Frame sources behind one small interface (open / read / release, fps, name): a V4L2 camera, a
video file, a folder of images, a network stream, or the Raspberry Pi camera through picamera2.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeseg.core.errors import SourceError, first_line
from edgeseg.core.errors import SourceLost as SourceLost  # re-exported: stream imports it here
from edgeseg.core.processing import (
    IMAGE_DIRS,
    IMAGE_EXTS,
    MASK_DIRS,
    MASK_NAME_ENDINGS,
    VAL_DIRS,
    list_dirs,
    list_files,
    named_as_mask,
    read_image,
)

log = logging.getLogger(__name__)


class Source(ABC):
    """A stream of OpenCV frames (BGR or gray uint8)."""

    name: str = "source"
    live: bool = False  # live sources drop stale frames and reconnect when lost

    @abstractmethod
    def open(self) -> None:
        """Start delivering frames; SourceError (one line) when that is impossible."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame, None at the end of a finite source; SourceLost when a live one fails.

        Each frame is a new array the caller owns: the stream draws its overlay over it."""

    @abstractmethod
    def release(self) -> None:
        """Free the device or file; safe to call twice."""

    @property
    def fps(self) -> float | None:
        """Nominal frame rate, when the source knows it."""
        return None

    def frame_name(self, frame_no: int) -> str | None:
        """The file stem frame `frame_no` came from (image sources), so outputs keep names."""
        return None

    def files(self) -> tuple[Path, ...]:
        """The files or folder on disk this source reads (none for cameras and streams), so an
        output can be refused before it would be written over them."""
        return ()

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _CaptureSource(Source):
    """Anything cv2.VideoCapture opens; the first frame is read on open so failures show early."""

    kind = "device"  # what a lost source is called in messages (a network source: "stream")

    def __init__(self, target: int | str, api: int, name: str) -> None:
        self.target, self.api, self.name = target, api, name
        self._cap: Any = None
        self._first: np.ndarray | None = None

    def open(self) -> None:
        self.release()
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our message says it
        try:
            cap = cv2.VideoCapture(self.target, self.api)
            if cap.isOpened():
                self._configure(cap)
            frame = self._grab(cap) if cap.isOpened() else None
        finally:
            cv2.utils.logging.setLogLevel(level)
        if frame is None:
            opened = cap.isOpened()
            cap.release()
            raise SourceError(self._open_error(opened))
        self._cap, self._first = cap, frame

    def _configure(self, cap: Any) -> None:
        """Set capture properties before the first frame is read."""

    def _grab(self, cap: Any) -> np.ndarray | None:
        """Read and decode the next frame; None when there is none."""
        ok, frame = cap.read()
        return np.asarray(frame) if ok and frame is not None else None

    def _open_error(self, opened: bool) -> str:
        """Why the first frame did not come (OPENED: the capture opened, then gave none)."""
        return f"{self.name}: cannot open or read a frame"

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.name}: read before open")
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        grabbed = self._grab(self._cap)
        if grabbed is not None:
            return grabbed
        if self.live:
            raise SourceLost(f"{self.name}: no frame from the {self.kind}")
        return None

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def fps(self) -> float | None:
        value = float(self._cap.get(cv2.CAP_PROP_FPS)) if self._cap is not None else 0.0
        return value if 0 < value < 1000 else None


class CameraSource(_CaptureSource):
    """A V4L2 (Linux) or default-backend camera by index: --camera N."""

    live = True

    def __init__(self, index: int, size: tuple[int, int] | None = None) -> None:
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        super().__init__(index, api, f"camera {index}")
        self.size = size

    def _configure(self, cap: Any) -> None:
        if self.size is not None:
            h, w = self.size
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a queue of old ones

    def _open_error(self, opened: bool) -> str:
        hint = f" (/dev/video{self.target} missing?)" if sys.platform.startswith("linux") else ""
        return (
            f"camera {self.target}: cannot open or read a frame{hint}; list cameras with "
            "`v4l2-ctl --list-devices`, or use --picamera for a Raspberry Pi camera module"
        )


_EMPTY_VIDEO_BYTES = 16 * 1024  # an AVI/MP4 header with no frame: a few KB


class VideoFileSource(_CaptureSource):
    """A video file, read frame by frame (every frame, unless the run is --realtime).

    MJPG videos are read as their JPEG packets and decoded by cv2.imdecode (libjpeg-turbo), as
    `jpeg_packets` says; other codecs, and OpenCV builds that cannot hand out packets, are
    decoded by OpenCV's video backend. A packet that does not decode is skipped and counted."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), cv2.CAP_ANY, str(self.path))
        self.jpeg_packets = False
        self.skipped = 0
        self._try_packets = True

    def files(self) -> tuple[Path, ...]:
        """The video file."""
        return (self.path,)

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"{self.path}: video file not found")
        self.jpeg_packets = False
        try:
            super().open()
        except SourceError:
            if not self.jpeg_packets:
                raise
            self._try_packets = False  # the first packet did not decode: let OpenCV decode
            super().open()

    def _configure(self, cap: Any) -> None:
        self.jpeg_packets = self._try_packets and jpeg_packets_on(cap)

    def _grab(self, cap: Any) -> np.ndarray | None:
        if not self.jpeg_packets:
            return super()._grab(cap)
        while True:
            ok, packet = cap.read()
            if not ok or packet is None or packet.size == 0:
                return None
            frame = cv2.imdecode(packet, _JPEG_READ)
            if frame is not None:
                return np.asarray(frame)
            if self._cap is None:  # the first packet: open() falls back to OpenCV decoding
                return None
            self.skipped += 1
            log.warning("%s: skipped a frame that is not a valid JPEG", self.name)

    def _open_error(self, opened: bool) -> str:
        # a valid file recorded with no frame (a count of 0 alone is also what containers
        # without an index report, so only a file too small to hold a frame is called empty)
        if opened and self._frame_count() == 0 and self.path.stat().st_size < _EMPTY_VIDEO_BYTES:
            return f"{self.path}: the video holds no frames (an empty recording)"
        return f"{self.path}: cannot read video (corrupt or a codec OpenCV lacks)"

    def _frame_count(self) -> int | None:
        cap = cv2.VideoCapture(str(self.path))
        try:
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else None
        finally:
            cap.release()


_MJPG = (cv2.VideoWriter.fourcc(*"MJPG"), cv2.VideoWriter.fourcc(*"mjpg"))  # FOURCC codes
_JPEG_READ = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # as a video decoder: no EXIF turn


def jpeg_packets_on(cap: Any) -> bool:
    """Switch an open MJPG capture on OpenCV's FFmpeg backend to handing out the encoded JPEG
    packets (CAP_PROP_FORMAT -1), which cv2.imdecode's libjpeg-turbo decodes with less CPU than
    FFmpeg's MJPEG decoder plus swscale; False (capture unchanged) for other codecs or backends."""
    try:
        if cap.getBackendName() != "FFMPEG":
            return False
    except cv2.error:
        return False
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return code in _MJPG and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))


class NetworkSource(_CaptureSource):
    """rtsp:// or http(s):// stream through OpenCV's FFmpeg backend."""

    live = True
    kind = "stream"

    def __init__(self, url: str) -> None:
        super().__init__(url, cv2.CAP_FFMPEG, url)

    def _open_error(self, opened: bool) -> str:
        return f"{self.target}: cannot open the stream (check the URL, network and credentials)"


def _without_masks(files: list[Path], *, say: bool = True) -> list[Path]:
    """FILES without the masks kept beside their images (X_mask.png next to X.jpg, as a
    Roboflow export's split folders hold them): a dataset's split run as frames. SAY: warn
    that they were skipped (not when only counting a folder's frames for a hint)."""
    stems = {p.stem for p in files}
    masks = {
        p
        for p in files
        for e in MASK_NAME_ENDINGS
        if p.stem.endswith(e) and p.stem[: -len(e)] in stems
    }
    if masks and say:
        log.warning(
            "skipped %d mask file(s) beside their images (such as %s)", len(masks), min(masks).name
        )
    return [p for p in files if p not in masks]


def _frame_names(files: list[Path]) -> list[str]:
    """Each file's frame name: its stem, or its whole name where two files share a stem
    (a.jpg and a.png), so that their --save-masks PNGs do not overwrite each other."""
    stems = Counter(p.stem for p in files)
    return [p.stem if stems[p.stem] == 1 else p.name for p in files]


def _sample_images(folder: Path) -> list[tuple[Path, str]] | None:
    """(image, sample name) for each sample folder when FOLDER is a split laid out one folder
    per sample, each holding its image and a mask named as one (the off-road set YCOR's
    valid/iid000123/rgb.jpg + labels.png): the split run as frames, named by folder. None when
    FOLDER is not laid out so."""
    subdirs = list_dirs(folder)
    found = []
    for d in subdirs:
        files = list_files(d)
        images = [p for p in files if not named_as_mask(p.stem)]
        if len(files) != 2 or len(images) != 1:
            return None
        found.append((images[0], d.name))
    return found or None


def _images_below(folder: Path) -> str:
    """'; pass a folder that holds them, such as FOLDER/val/images (N images)' when FOLDER is a
    dataset whose images sit one or two levels down (val/images, images/, JPEGImages/, or a
    split of sample folders); the held-out split first, as that is what a model has not seen."""

    def count(d: Path) -> int:  # the frames a run of D reads: masks beside images are skipped
        return len(_without_masks(list_files(d), say=False))

    def dirs(d: Path) -> list[Path]:  # image folders first, never a mask folder
        found = [c for c in list_dirs(d) if c.name.lower() not in MASK_DIRS]
        named = (*IMAGE_DIRS, "jpegimages")  # and Pascal VOC's
        return sorted(found, key=lambda c: (c.name.lower() not in named, c.name))

    subdirs = dirs(folder)
    held_out = [d for d in subdirs if d.name.lower() in (*VAL_DIRS, "test")]
    for d in [*held_out, *subdirs]:
        if samples := _sample_images(d):  # a split of sample folders runs as it is
            return f"; pass a folder that holds them, such as {d} ({len(samples)} samples)"
        for candidate in (*dirs(d), d):
            if n := count(candidate):
                images = f"{n} image{'s' if n != 1 else ''}"
                return f"; pass a folder that holds them, such as {candidate} ({images})"
    return ""


FOLDER_FPS = 10.0  # frames per second of a video saved from a folder of images


class ImageFolderSource(Source):
    """Every image in a folder, in name order, or one image file; an unreadable file is skipped
    with a warning and counted in `skipped` (one bad file never costs the frames around it)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.name = str(self.folder)
        self._files: list[Path] = []
        self._stems: list[str] = []  # each file's frame name
        self._names: list[str] = []  # each frame read's name, in order
        self._pos = 0
        self.skipped = 0
        self._read = 0

    def files(self) -> tuple[Path, ...]:
        """The folder of images, or the one image."""
        return (self.folder,)

    def open(self) -> None:
        if self.folder.is_file():
            files = [self.folder]
        else:
            files = _without_masks(list_files(self.folder))
        self._stems = _frame_names(files)
        if not files and (samples := _sample_images(self.folder)) is not None:
            files, self._stems = [p for p, _ in samples], [name for _, name in samples]
        if not files:
            raise SourceError(
                f"--source {self.folder}: no images ({', '.join(sorted(IMAGE_EXTS))})"
                + _images_below(self.folder)
            )
        self._files, self._pos = files, 0

    def read(self) -> np.ndarray | None:
        while self._pos < len(self._files):
            path = self._files[self._pos]
            self._pos += 1
            try:
                image = read_image(path)
            except (ValueError, OSError) as exc:
                if self.folder.is_file():  # the one image asked for: its error, not a skip
                    raise SourceError(f"--source {first_line(exc)}") from None
                self.skipped += 1
                log.warning("skipped %s", first_line(exc))  # the message names the file
                continue
            self._read += 1
            self._names.append(self._stems[self._pos - 1])
            return image
        if self.skipped and not self._read:
            raise SourceError(f"{self.folder}: none of its {self.skipped} image(s) can be read")
        return None

    def release(self) -> None:
        self._files = []

    @property
    def fps(self) -> float:
        """The rate a folder's frames are saved at (--save): images have none of their own, and
        the processing rate would make the same folder's video a different length per machine."""
        return FOLDER_FPS

    def frame_name(self, frame_no: int) -> str | None:
        """The name of the FRAME_NO-th frame read (files that could not be read are skipped, so
        frame 3 may be the fifth file): what its --save-masks PNG is called."""
        return self._names[frame_no] if 0 <= frame_no < len(self._names) else None


def _picamera_broken(exc: BaseException) -> str:
    """picamera2 is installed but cannot be imported: its own cause, and the usual one."""
    return (
        f"--picamera: picamera2 is installed but cannot be imported ({first_line(exc)}); apt's "
        "picamera2 is built for apt's numpy 1.x, and a numpy 2 pip installed in the venv breaks "
        "it: pip install 'numpy<2' there (with an opencv-python-headless release that accepts "
        "it; pip says which)"
    )


class PicameraSource(Source):
    """The Raspberry Pi camera module via picamera2 (OpenCV cannot open libcamera cameras)."""

    name = "picamera"
    live = True

    def __init__(self, size: tuple[int, int] = (480, 640)) -> None:
        self.size = size
        self._cam: Any = None

    def open(self) -> None:
        try:
            module = importlib.import_module("picamera2")
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] != "picamera2":
                raise SourceError(_picamera_broken(exc)) from None
            raise SourceError(
                "--picamera needs picamera2: `sudo apt install python3-picamera2` and create the "
                "venv with `python3 -m venv --system-site-packages` (OpenCV cannot open libcamera "
                "cameras on Raspberry Pi OS Bookworm)"
            ) from None
        except Exception as exc:  # installed, but its import fails (a numpy it was not built for)
            raise SourceError(_picamera_broken(exc)) from None
        try:
            cam = module.Picamera2()
            h, w = self.size
            # libcamera's "RGB888" is B,G,R in memory: exactly what OpenCV expects.
            cam.configure(cam.create_video_configuration(main={"format": "RGB888", "size": (w, h)}))
            cam.start()
        except (
            Exception
        ) as exc:  # picamera2 raises RuntimeError/IndexError when no camera is present
            raise SourceError(f"picamera: cannot start the camera ({exc})") from None
        self._cam = cam

    def read(self) -> np.ndarray | None:
        try:
            return np.asarray(self._cam.capture_array("main"))
        except Exception as exc:
            raise SourceLost(f"picamera: capture failed ({exc})") from None

    def release(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None


def open_source(
    *,
    camera: int | None = None,
    source: str | os.PathLike[str] | None = None,
    picamera: bool = False,
    size: tuple[int, int] | None = None,
) -> Source:
    """Build (not yet open) the one source the options name; `source` is a file or folder (str or
    a path object) or an rtsp:// / http(s):// URL."""
    given = [camera is not None, source is not None, picamera]
    if sum(given) != 1:
        raise SourceError("give exactly one of --camera N, --source FILE|DIR|URL, --picamera")
    if camera is not None:
        if camera < 0:
            raise SourceError(f"--camera {camera}: camera index must be 0 or more")
        return CameraSource(camera, size)
    if picamera:
        return PicameraSource(size or (480, 640))
    as_path = isinstance(source, os.PathLike)  # a Path is a file or folder: never a URL or camera
    if isinstance(source, os.PathLike):
        source = os.fsdecode(source)
    if not isinstance(source, str):
        raise SourceError(
            f"source={source!r}: expected a file, folder or URL (str or Path); "
            "for a camera pass camera=N"
        )
    if "://" in source and not as_path:
        if not source.lower().startswith(("rtsp://", "rtsps://", "http://", "https://")):
            raise SourceError(f"--source {source}: only rtsp:// and http(s):// streams")
        return NetworkSource(source)
    path = Path(source)
    if path.is_dir() or (path.is_file() and path.suffix.lower() in IMAGE_EXTS):
        return ImageFolderSource(path)
    if not path.exists():
        # `--source 0` means camera 0, as in Ultralytics / OpenCV (a Path("0") stays a file)
        if source.strip().isdigit() and not as_path:
            return CameraSource(int(source), size)
        raise SourceError(f"--source {source}: no such file or folder")
    return VideoFileSource(path)
