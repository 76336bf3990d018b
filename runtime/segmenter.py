"""One .tflite model on one interpreter: frame in, class map out, via the shared processing core.

The eval stage measures `.tflite` files through `Segmenter.predict`: what is measured is what ships.
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import (
    DelegateError,
    EdgesegError,
    ModelError,
    UnknownDelegateError,
    first_line,
    path_argument,
)
from edgeseg.core.model_metadata import read_spec, strip_metadata
from edgeseg.core.processing import (
    IMAGE_EXTS,
    Placement,
    check_frame,
    class_map_from_output,
    class_map_to_frame,
    prepare_image,
    prepare_image_into,
    read_image,
    to_input_tensor,
)
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.delegates import (
    EDGETPU_CUSTOM_OP,
    FALLBACK_HINT,
    DelegateReport,
    delegate_report,
    load_delegate,
    parse_delegate,
)
from edgeseg.runtime.inspect import check_model_shapes
from edgeseg.runtime.interpreter import MAX_THREADS, default_threads, resolve_interpreter

log = logging.getLogger("edgeseg.runtime")


def read_model_bytes(model_path: str | Path) -> bytes:
    """The model file's bytes, or ModelError if it is missing or not a TFLite flatbuffer."""
    path = Path(model_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a folder, expected a .tflite file") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        if path.suffix.lower() in (*IMAGE_EXTS, ".mp4", ".avi", ".mkv", ".mov", ".webm"):
            raise ModelError(
                f"{path}: a picture or video where the model goes; the model comes first: "
                f"edgeseg run MODEL.tflite --source {path}"
            )
        raise ModelError(
            f"{path}: not a TFLite model (no TFL3 flatbuffer identifier); "
            "convert it with `edgeseg convert`"
        )
    return data


def _default_spec(inp: dict[str, Any], out: dict[str, Any], path: Path) -> ModelSpec:
    _, h, w, c = (int(v) for v in inp["shape"])
    n = int(out["shape"][-1])
    log.warning(
        "%s carries no edgeseg metadata: assuming %d classes, RGB, stretch resize; "
        "convert with `edgeseg convert` to embed the spec",
        path,
        max(n, 2),
    )
    return ModelSpec.from_shapes(h, w, c, n)


class Segmenter:
    """A loaded .tflite segmentation model: frame -> preprocess -> invoke -> postprocess -> map."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int | None = None,
        delegate: str | None = None,
        fallback: str | None = None,
    ) -> None:
        if fallback not in (None, "cpu"):
            raise DelegateError(
                f"fallback {fallback!r}: the only fallback is 'cpu' (--fallback cpu; "
                "fallback='cpu' in Python)"
            )
        count = default_threads() if threads is None else _thread_count(threads)
        self.model_path = path_argument(model_path, "model", "the path of a .tflite model")
        self.model_bytes = read_model_bytes(self.model_path)
        Interpreter, load_fn, self.interpreter_package = resolve_interpreter()
        self._interpreter_class = Interpreter
        self.threads = count
        self.delegate_name: str | None = None
        self.fallback_allowed = fallback == "cpu"
        delegates: list[Any] = []
        if delegate:
            try:
                request = parse_delegate(delegate, self.model_bytes)
                delegates = [load_delegate(request, load_fn)]
                self.delegate_name = request.name
            except DelegateError as exc:
                if fallback != "cpu" or isinstance(exc, UnknownDelegateError):
                    raise
                # its hint ends "or pass --fallback cpu": said as what happens instead
                said = str(exc).removesuffix(f"; {FALLBACK_HINT}")
                log.warning("%s; continuing on the CPU (--fallback cpu)", said)
        elif EDGETPU_CUSTOM_OP in self.model_bytes:
            raise ModelError(
                f"{self.model_path}: compiled for the Edge TPU; run it with "
                "--delegate edgetpu, or use the plain int8 .tflite on the CPU"
            )
        self.interpreter = self._build(Interpreter, delegates)
        self._by_threads: dict[int, Any] = (
            {} if self.delegate_name else {self.threads: self.interpreter}
        )
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        spec = read_spec(self.model_bytes, name=self.model_path)
        self.spec: ModelSpec = spec or _default_spec(self.input, self.output, self.model_path)
        self._check_shapes()
        in_scale, in_zero = self.input["quantization"]
        self.in_scale, self.in_zero = float(in_scale), int(in_zero)
        self.out_scale, out_zero = self.output["quantization"]
        self.out_scale, self.out_zero = float(self.out_scale), int(out_zero)
        self.delegate_report: DelegateReport | None = delegate_report(self.interpreter)
        dtype = np.dtype(self.input["dtype"])
        # camera bytes go straight into the input tensor: no conversion, no extra copy
        self._direct = dtype == np.uint8 and abs(self.in_scale - 1.0) < 1e-6 and self.in_zero == 0
        self._direct |= dtype == np.uint8 and self.in_scale == 0

    def __repr__(self) -> str:
        """What a REPL or a log shows: the model, its input and classes, where it runs."""
        s = self.spec
        return (
            f"Segmenter({str(self.model_path)!r}, input {s.input_height}x{s.input_width}x"
            f"{s.channels} {np.dtype(self.input['dtype']).name}, {s.num_classes} classes, "
            f"{self.threads} thread(s), {self.delegate_name or 'cpu'})"
        )

    # === Thread count ===

    def thread_candidates(self) -> list[int]:
        """What `--threads auto` tries: all cores, then all but one (just 1 on one core); none
        when a delegate runs the graph (its thread count does not matter)."""
        return [] if self.delegate_name is not None else auto_thread_candidates()

    def use_threads(self, threads: int) -> None:
        """Run on an interpreter with `threads` threads (built once, then cached; CPU only)."""
        threads = _thread_count(threads)
        if threads == self.threads:
            return
        if self.delegate_name is not None:
            raise DelegateError("the thread count is fixed while a delegate runs the model")
        if threads not in self._by_threads:
            saved, self.threads = self.threads, threads
            try:
                self._by_threads[threads] = self._build(self._interpreter_class, [])
            except BaseException:
                self.threads = saved
                raise
        self.threads, self.interpreter = threads, self._by_threads[threads]

    def _build(self, Interpreter: type[Any], delegates: list[Any]) -> Any:
        content = strip_metadata(self.model_bytes)
        try:
            it = Interpreter(
                model_content=content,
                num_threads=self.threads,
                experimental_delegates=delegates or None,
            )
            it.allocate_tensors()
            return it
        except (ValueError, RuntimeError) as exc:
            first = first_line(exc)
            if delegates:
                message = (
                    f"the {self.delegate_name} delegate cannot run {self.model_path} ({first})"
                )
                if self.fallback_allowed:
                    log.warning("%s; continuing on the CPU (--fallback cpu)", message)
                    self.delegate_name = None
                    return self._build(Interpreter, [])
                raise DelegateError(message) from None
            raise ModelError(
                f"{self.model_path}: the interpreter cannot load it ({first})"
            ) from None

    def _check_shapes(self) -> None:
        check_model_shapes(self.model_path, self.input["shape"], self.output["shape"], self.spec)

    # === The frame path ===

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Placement]:
        """OpenCV frame -> batch-1 input tensor of the interpreter's dtype, plus its placement."""
        pixels, placement = prepare_image(frame, self.spec)
        return to_input_tensor(pixels, self.input["dtype"], self.in_scale, self.in_zero), placement

    def new_input_buffer(self) -> np.ndarray:
        """A zeroed batch-1 array of the input tensor's shape and dtype, for `preprocess_into`."""
        return np.zeros(tuple(int(v) for v in self.input["shape"]), self.input["dtype"])

    def preprocess_into(self, frame: np.ndarray, buffer: np.ndarray) -> Placement:
        """`preprocess` written into a `new_input_buffer` array: uint8 models get the resized
        pixels straight into it; others are converted into it. Same values as `preprocess`."""
        if self._direct:
            return prepare_image_into(frame, self.spec, buffer[0])
        tensor, placement = self.preprocess(frame)
        np.copyto(buffer, tensor)
        return placement

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run the interpreter on one input tensor; the raw output (ints for int8 models)."""
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        out: np.ndarray = self.interpreter.get_tensor(self.output["index"])
        return out

    def class_map(self, raw: np.ndarray) -> np.ndarray:
        """Raw output -> uint8 class map at the model's output size (integer argmax)."""
        return class_map_from_output(raw, self.spec.output_kind, self.out_scale, self.out_zero)

    def postprocess(self, raw: np.ndarray, placement: Placement) -> np.ndarray:
        """Raw output -> uint8 class map at the source frame's size."""
        return class_map_to_frame(self.class_map(raw), placement)

    def predict(self, frame: np.ndarray) -> np.ndarray:
        """OpenCV frame (HxWx3 **BGR** or HxW gray, uint8, any size) -> class map (HxW uint8 class
        ids) at the frame's size. For an RGB array (PIL, imageio) pass `rgb[..., ::-1]`."""
        tensor, placement = self.preprocess(check_frame(frame))
        return self.postprocess(self.invoke(tensor), placement)

    def predict_file(self, path: str | Path) -> np.ndarray:
        """Read an image file (as OpenCV does) and predict its class map at its own size."""
        return self.predict(read_image(path))

    def describe(self) -> str:
        """One line for --verbose: package, threads, delegate and how much of the graph it took."""
        where = self.delegate_name or "cpu"
        text = f"{self.interpreter_package} interpreter, {self.threads} thread(s), {where}"
        r = self.delegate_report
        if r is not None:
            label = "delegate" if self.delegate_name else "XNNPACK"
            text += (
                f"; {label} took {r.delegated_ops}/{r.total_ops} ops in {r.partitions} partition(s)"
            )
        return text


def _thread_count(threads: object) -> int:
    """A thread count as the interpreter takes it (an int >= 1; NumPy ints too): anything else is
    one clear error here, not the interpreter's "cannot load" that would blame the model."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise EdgesegError(f"threads={threads!r}: expected a number of threads >= 1, or None")
    count = int(threads)
    if count > MAX_THREADS:  # the interpreter crashes the process far above any core count
        raise EdgesegError(f"threads={count}: at most {MAX_THREADS} interpreter threads")
    return count


def auto_thread_candidates() -> list[int]:
    """The thread counts `--threads auto` chooses between on this machine: all cores, then all
    but one (the spare core runs the pipeline's other stages); just 1 on one core."""
    cores = default_threads()
    return [cores, cores - 1] if cores > 1 else [1]
