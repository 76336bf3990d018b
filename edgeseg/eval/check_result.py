"""The result of `edgeseg check` as data: the verdict against the limits, its JSON and its Markdown
(fit for a CI job summary). Its own module so that `compare` (which computes it) and `report`
(which draws its pictures) both import it and not each other."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgeseg.core.metrics import points
from edgeseg.eval.evaluate import EvalResult


@dataclass(frozen=True)
class Disagreement:
    """One image where the models differ: the share of differing pixels and its rendered cells."""

    stem: str
    fraction: float
    cells: tuple[np.ndarray, ...]  # input, float, int8, diff; each CELL x CELL BGR


@dataclass(frozen=True)
class CheckResult:
    """Float vs int8 on the same images, the drops (in mIoU points, x100) and the verdict."""

    int8: EvalResult
    float_eval: EvalResult | None  # None when the baseline came from the int8 model's metadata
    baseline: Literal["model", "metadata"]
    float_miou: float
    float_per_class_iou: dict[str, float | None] | None
    max_drop: float
    max_class_drop: float | None
    agreement: float | None  # fraction of pixels where float and int8 predict the same class
    worst: tuple[Disagreement, ...] = ()
    notes: tuple[str, ...] = ()
    outputs: dict[str, Path] = field(default_factory=dict)
    # what the converted model is, as its metadata records it (int8, float16, dynamic, float32,
    # int16x8): the name the report gives it (the JSON keys stay "int8_*" for CI scripts)
    quant: str = "int8"

    def __repr__(self) -> str:
        """The verdict and the numbers behind it, not two whole evaluations."""
        agreement = "n/a" if self.agreement is None else f"{100 * self.agreement:.2f}%"
        return (
            f"CheckResult(passed={self.passed}, int8={str(self.int8.model)!r}, "
            f"float_miou={self.float_miou:.4f}, int8_miou={self.int8.miou:.4f}, "
            f"miou_drop={points(self.miou_drop):.2f} points (max {self.max_drop:g}), "
            f"agreement={agreement}, baseline={self.baseline!r})"
        )

    @property
    def miou_drop(self) -> float:
        """Float mIoU minus int8 mIoU, in points (positive = int8 is worse)."""
        return 100.0 * (self.float_miou - self.int8.miou)

    @property
    def class_drops(self) -> dict[str, float | None]:
        """Per-class IoU drop in points; None where either side has no value."""
        if self.float_per_class_iou is None:
            return {}
        return {
            name: None if f is None or q is None else 100.0 * (f - q)
            for (name, q), f in zip(
                self.int8.per_class_iou.items(), self.float_per_class_iou.values(), strict=False
            )
        }

    @property
    def failures(self) -> tuple[str, ...]:
        """One line per limit exceeded; empty when the check passes."""
        out = []
        if not self.miou_drop <= self.max_drop:  # NaN fails too
            out.append(
                f"mIoU drop {_drop_text(self.miou_drop, self.max_drop)} points "
                f"> --max-drop {self.max_drop:g} "
                f"(float {100 * self.float_miou:.2f} -> {self.quant} {100 * self.int8.miou:.2f})"
            )
        if self.max_class_drop is not None:
            for name, drop in self.class_drops.items():
                if drop is not None and drop > self.max_class_drop:
                    out.append(
                        f"class {name!r} IoU drop {_drop_text(drop, self.max_class_drop)} "
                        f"points > --max-class-drop {self.max_class_drop:g}"
                    )
        return tuple(out)

    @property
    def passed(self) -> bool:
        """True when no limit is exceeded: the gate's verdict (`edgeseg check` exits 0)."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """The verdict, drops and both evaluations as JSON-ready data: what check.json holds."""
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "baseline": self.baseline,
            "float_model": None if self.float_eval is None else str(self.float_eval.model),
            "int8_model": str(self.int8.model),
            "data": str(self.int8.data),
            "images": self.int8.images,
            "max_drop": self.max_drop,
            "max_class_drop": self.max_class_drop,
            "float_miou": _num(self.float_miou),
            "int8_miou": _num(self.int8.miou),
            "miou_drop": _num(self.miou_drop),
            "class_drops": self.class_drops,
            "float_per_class_iou": self.float_per_class_iou,
            "int8_per_class_iou": self.int8.per_class_iou,
            "pixel_agreement": self.agreement,
            "worst_images": [{"image": d.stem, "disagreement": d.fraction} for d in self.worst],
            "float": None if self.float_eval is None else self.float_eval.to_dict(),
            "int8": self.int8.to_dict(),
            "notes": list(self.notes),
            "outputs": {k: str(v) for k, v in self.outputs.items()},
        }

    def to_markdown(self) -> str:
        """The report as Markdown (check.md), fit for a CI job summary."""
        return check_markdown(self)


def _drop_text(drop: float, limit: float) -> str:
    """A drop for a FAIL line: 2 decimals, or as many as show it is above LIMIT (a limit of 0
    failed by 0.004 points read '0.00 points > 0'; 0.013 > 0.01 read '0.01 points > 0.01')."""
    text, digits = f"{points(drop):.2f}", 2
    while drop > limit and float(text) <= limit and digits < 6:
        digits += 1
        text = f"{drop:.{digits}f}"
    return text


def _num(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


# === Markdown ===


def _pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def _pts(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{points(v):+.2f}"


def _code(text: object) -> str:
    """TEXT (a class name, a file name) as inline code that stays one table cell: pipes split
    GitHub's table cells even inside code, a backtick ended the span, and <b> became HTML."""
    value = str(text).replace("|", "\\|").replace("\n", " ")
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _plain(text: str) -> str:
    """TEXT outside code (failure lines, notes) with HTML tags shown, not rendered."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def check_markdown(res: CheckResult) -> str:
    """A self-contained Markdown report: verdict, score table, limits, worst images, notes."""
    q, k = res.int8, res.quant
    f = res.float_eval
    verdict = "✅ PASS" if res.passed else "❌ FAIL"
    source = f"float {_code(f.model.name)}" if f is not None else "the float mIoU in its metadata"
    # a metadata baseline is a score recorded at conversion, not one measured on this data
    base = "float" if f is not None else "float (recorded)"
    lines = [
        f"## edgeseg accuracy check: {verdict}",
        "",
        f"{k} {_code(q.model.name)} vs {source}, on {q.images} images from {_code(q.data)}.",
        f"Scores in percent; drop = float - {k} in points (positive = {k} worse).",
        "",
        f"| metric | {base} | {k} | drop |",
        "|---|---:|---:|---:|",
        f"| **mIoU** | {_pct(res.float_miou)} | {_pct(q.miou)} | **{_pts(res.miou_drop)}** |",
    ]
    for name, key in (("pixel accuracy", "pixel_accuracy"), ("fw-IoU", "fw_iou")):
        fv = getattr(f.scores, key) if f is not None else None
        qv = getattr(q.scores, key)
        drop = None if fv is None else 100 * (fv - qv)
        lines.append(f"| {name} | {_pct(fv)} | {_pct(qv)} | {_pts(drop)} |")
    float_pc = res.float_per_class_iou or {}
    drops = res.class_drops
    for name, qv in q.per_class_iou.items():
        lines.append(
            f"| IoU {_code(name)} | {_pct(float_pc.get(name))} | {_pct(qv)} | "
            f"{_pts(drops.get(name))} |"
        )
    limit = f"mIoU drop ≤ {res.max_drop:g} point{'' if res.max_drop == 1 else 's'}"
    if res.max_class_drop is not None:
        limit += (
            f", every class IoU drop ≤ {res.max_class_drop:g} "
            f"point{'' if res.max_class_drop == 1 else 's'}"
        )
    lines += ["", f"**Limits:** {limit}."]
    if res.failures:
        lines += ["", "**Failed:**", *[f"- {_plain(msg)}" for msg in res.failures]]
    lines.append("")
    if res.agreement is not None:
        lines.append(f"Pixel agreement float vs {k}: **{100 * res.agreement:.2f}%**.")
    lat = f"{k} {q.mean_latency_ms:.1f} ms"
    if f is not None:
        lat = f"float {f.mean_latency_ms:.1f} ms, " + lat
    lines.append(f"Mean latency per image on the checking machine: {lat}.")
    if res.worst:
        worst = ", ".join(f"{_code(d.stem)} ({100 * d.fraction:.2f}%)" for d in res.worst)
        lines += ["", f"Most-disagreeing images (see `disagreement.png`): {worst}."]
    if res.notes:
        lines += [line for n in res.notes for line in ("", f"> {_plain(n)}")]  # one quote each
    return "\n".join(lines) + "\n"
