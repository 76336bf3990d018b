"""Training-quality benchmark: train with the DEFAULT recipe and with a plain reference recipe on
each real dataset in ../shared/data, under the same stated CPU budget, then convert each model to
int8 and check it, all with the library calls the CLI uses (train -> convert -> check -> bench).

    .venv/bin/python benchmarks/bench_train_quality.py               # 15 min per set (2 models)
    .venv/bin/python benchmarks/bench_train_quality.py --quick --sets isbi2012_membrane
    .venv/bin/python benchmarks/bench_train_quality.py --minutes 5 --threads 2
    # your own sets, at the budget `edgeseg train DATA` uses, with your own targets:
    .venv/bin/python benchmarks/bench_train_quality.py --data-root ~/data --sets camvid,ycor \\
        --steps 2000 --target camvid=0.45 --target ycor=0.50 --ignore-class void \\
        --ignore-class unlabelled

Budget: each model trains for `--minutes` of wall time on this machine (default 7.5, so 15 minutes
per set for the two recipes, the issue's "about 15 minutes per set on 2 cores"): a short probe
run measures seconds per optimiser step with and without XLA (what `--xla auto` measures; the
faster is used for both recipes; 30 steps each at the default budget, fewer below it, 12 with
--quick), the step budget is set so training (with its periodic validation) fits, and a time cap
stops it if the machine slows down; a schedule the cap cut short shows as "38 of 62" in the
steps column. Both recipes get the same input size (the default, derived from the data) and the
same number of steps. The minutes are training only: a --quick set (2 x 2 minutes) took about 6
minutes on 2 cores with the probe, conversions and checks.

- default: everything `edgeseg train DATA` does with no options, for this budget's steps (under
  recipe.CROP_FROM_STEPS at the default minutes, so whole frames: random crops start there).
- plain: the issue's plain reference: cross-entropy + Dice, horizontal flips (+ colour jitter) but
  no random crops, no class weights, no warm-up, no quantisation-aware model; BatchNorm momentum
  0.9, Adam 1e-3, batch 8.

The default recipe ends with the quantisation-aware model (model.keras; the float one is kept as
model_float.keras); the plain one has none. Prints one table (the float model's mIoU, model.keras's,
the int8 model's, int8 pixel agreement with model.keras (what `edgeseg check` compares) and with
the float model, GMAC per frame, int8 invoke ms) and the targets met / missed, judged on
model.keras. Exit 0 when every target is met, 1 when one is missed or a set could not be measured
(its error is printed; the other sets still run), 2 for bad options or input, checked before any
training: a set not found under --data-root (the error lists the ones there) or not a data set,
--quick with --minutes or --steps (all three set the budget), a --target for a set not in --sets,
a --json that cannot be written.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # sets the native log levels: TensorFlow's lines hidden, as the CLI
    DATA,
    check_dataset,
    check_output_file,
    input_error,
    machine,
    non_negative_int,
    parser,
    positive_float,
    positive_int,
    print_machine,
    require_folder,
    run_quietly,
)

from edgeseg.cli.common import fast_tensorflow_cpu
from edgeseg.core.errors import first_line
from edgeseg.core.fileio import scratch_dir

fast_tensorflow_cpu()  # as `edgeseg train` does, before TensorFlow loads

QUICK_MINUTES = 2.0
SETS = ("isbi2012_membrane", "dubai_aerial", "labelmefacade")
TARGETS = {"isbi2012_membrane": 0.75, "dubai_aerial": 0.62}  # labelmefacade: well above plain
WELL_ABOVE = 0.03  # "well above the plain reference": at least 3 mIoU points
MAX_INT8_DROP = 0.5  # mIoU points
MIN_AGREEMENT = 0.995
PROBE_STEPS = 30  # per XLA setting at the default budget; scaled down with it (probe_steps)
MIN_PROBE_STEPS = 12  # StepTimer skips 5 tracing steps: 6 timed intervals at least
DEFAULT_MINUTES = 7.5
BUDGET_SHARE = 0.85  # of the minutes for optimiser steps; the rest for validation and startup
PLAIN: dict[str, Any] = {
    "min_scale": 1.0,
    "class_weighting": "none",
    "warmup": 0.0,
    "loss": "ce+dice",
    "qat": False,
}


@dataclass
class Row:
    """One trained, converted and checked model."""

    dataset: str
    recipe: str
    size: tuple[int, int]
    steps: int  # optimiser steps actually run
    planned: int  # the steps its schedule was planned for (more than `steps`: the time cap hit)
    xla: bool  # the training step XLA-compiled (the probe's faster choice for this set)
    train_min: float
    float_miou: float  # the float model (model_float.keras when the run made a QAT model)
    model_miou: float  # model.keras: the quantisation-aware model by default, else the float one
    int8_miou: float
    agreement: float  # int8 vs model.keras (what `edgeseg check` compares)
    agreement_float: float  # int8 vs the float model
    gmacs: float
    invoke_ms: float


class StepTimer:
    """Keras callback: seconds per optimiser step after the first few (tracing) steps."""

    def __init__(self, skip: int = 5) -> None:
        import keras

        class _Timer(keras.callbacks.Callback):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                self.times.append(time.perf_counter())

        self.callback = _Timer()
        self.skip = skip

    def seconds_per_step(self) -> float:
        t = self.callback.times[self.skip :]
        return (t[-1] - t[0]) / max(1, len(t) - 1)


def probe_steps(minutes: float) -> int:
    """Optimiser steps per XLA setting for the step-time probe: PROBE_STEPS at the default budget,
    in proportion below it (--quick: 12), so the probe never takes longer than the training it
    sizes (2 x 30 steps took longer than --quick's 2 minutes)."""
    scaled = round(PROBE_STEPS * minutes / DEFAULT_MINUTES)
    return max(MIN_PROBE_STEPS, min(PROBE_STEPS, scaled))


def time_cap(seconds: float) -> Any:
    """Keras callback that counts optimiser steps and stops training once `seconds` have passed
    (a safety net: the step budget is meant to fit)."""
    import keras

    class _Cap(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()
            self.hit = False
            self.steps = 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps += 1
            if time.perf_counter() - self.start > seconds:
                self.hit = self.model.stop_training = True

    return _Cap()


def run_set(
    data: Path,
    work: Path,
    minutes: float,
    runs: int,
    log: Any,
    steps: int | None = None,
    ignore: tuple[str, ...] = (),
) -> list[Row]:
    """Probe the step time, then train, convert, check and time both recipes on one dataset;
    with `steps`, that many optimiser steps each instead of what `minutes` buys (no time cap,
    `--xla auto` deciding per run as `edgeseg train` does). `ignore`: class names left out
    (`--ignore-class`) where this set lists them."""
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.convert.pipeline import convert_model
    from edgeseg.data.dataset import match_class_names, read_class_names
    from edgeseg.eval import compare
    from edgeseg.runtime.bench import benchmark
    from edgeseg.train import FLOAT_MODEL
    from edgeseg.train.fit import TrainConfig, train

    found = read_class_names(data)
    left_out = match_class_names(ignore, found[0])[0] if found is not None else ()
    base = TrainConfig(
        data=data, out=work / "probe", verbose=0, overwrite=True, ignore_classes=left_out
    )
    if steps is None:
        per_step: dict[str, float] = {}
        probing = probe_steps(minutes)
        for xla in ("off", "on"):  # what `--xla auto` measures, once for both recipes
            timer = StepTimer()
            probe = replace(base, steps=probing, patience=1000, xla=xla, qat=False)
            trained = train(probe, callbacks=[timer.callback])
            per_step[xla] = timer.seconds_per_step()
        xla = min(per_step, key=per_step.__getitem__)
        base = replace(base, xla=xla)
        steps = max(probing, int(minutes * 60 * BUDGET_SHARE / per_step[xla]))
        log(
            f"{data.name}: {per_step['off']:.2f} s/step ({per_step['on']:.2f} with XLA: "
            f"--xla {xla}; {probing} probe steps each) -> {steps} steps"
        )
        cap_seconds = minutes * 60
    else:
        log(f"{data.name}: {steps} steps per recipe (--xla auto)")
        cap_seconds = math.inf
    rows = []
    recipes: tuple[tuple[str, dict[str, Any]], ...] = (("default", {}), ("plain", PLAIN))
    for recipe, overrides in recipes:
        out = work / f"{data.name}-{recipe}"
        t0 = time.perf_counter()
        cap = time_cap(cap_seconds)
        config = replace(base, out=out, steps=steps, patience=1000, **overrides)
        trained = train(config, callbacks=[cap])
        train_min = (time.perf_counter() - t0) / 60
        saved = json.loads(trained.config_path.read_text())
        size = tuple(saved["train"]["size"])
        resolved = trained.config  # steps per epoch x epochs: the schedule as planned
        planned = steps
        if resolved is not None and resolved.steps_per_epoch and resolved.epochs:
            planned = resolved.steps_per_epoch * resolved.epochs
        int8 = convert_model(trained.model_path, out / "model_int8.tflite", ConvertOptions(), data)
        check = compare(trained.model_path, int8.export.path, data, max_drop=MAX_INT8_DROP)
        float_path = trained.model_path.with_name(FLOAT_MODEL)
        float_check = (
            compare(float_path, int8.export.path, data, max_drop=MAX_INT8_DROP)
            if float_path.is_file()
            else check
        )
        bench = benchmark(int8.export.path, runs=runs, warmup=3)
        row = Row(
            dataset=data.name,
            recipe=recipe,
            size=(int(size[0]), int(size[1])),
            steps=cap.steps,
            planned=max(planned, cap.steps),
            xla=bool(saved.get("train_step", {}).get("xla", saved["train"]["xla"] == "on")),
            train_min=train_min,
            float_miou=float_check.float_miou,
            model_miou=check.float_miou,
            int8_miou=check.int8.miou,
            agreement=check.agreement if check.agreement is not None else math.nan,
            agreement_float=(
                float_check.agreement if float_check.agreement is not None else math.nan
            ),
            gmacs=bench.macs / 1e9,
            invoke_ms=bench.best.invoke.p50_ms,
        )
        capped = " (time cap hit)" if cap.hit else ""
        log(
            f"  {recipe}: float {row.float_miou:.3f} model {row.model_miou:.3f} "
            f"int8 {row.int8_miou:.3f}{capped}"
        )
        rows.append(row)
    return rows


def verdicts(rows: list[Row], targets: dict[str, float] | None = None) -> list[tuple[str, bool]]:
    """(target, met) for every target these rows can judge; `targets` adds or replaces mIoU
    targets by dataset name (`--target NAME=MIOU`)."""
    targets = {**TARGETS, **(targets or {})}
    out: list[tuple[str, bool]] = []
    by = {(r.dataset, r.recipe): r for r in rows}
    for (name, recipe), r in by.items():
        if recipe != "default":
            continue
        if name in targets:
            out.append((f"{name} model mIoU >= {targets[name]}", r.model_miou >= targets[name]))
        plain = by.get((name, "plain"))
        if name == "labelmefacade" and plain is not None:
            above = r.model_miou >= plain.model_miou + WELL_ABOVE
            out.append((f"{name} default >= plain + {WELL_ABOVE}", above))
        drop = 100 * (r.model_miou - r.int8_miou)
        out.append((f"{name} int8 drop {drop:.2f} <= {MAX_INT8_DROP} pt", drop <= MAX_INT8_DROP))
        out.append(
            (f"{name} agreement {100 * r.agreement:.2f}% >= 99.5%", r.agreement >= MIN_AGREEMENT)
        )
    return out


def main() -> int:
    """Check the options and sets, then train, convert and check both recipes on each set."""
    ap = parser(__doc__)
    ap.add_argument(
        "--data-root",
        type=Path,
        default=DATA,
        metavar="DIR",
        help="folder holding the sets (../shared/data, or $EDGESEG_SHARED_DATA)",
    )
    ap.add_argument(
        "--sets",
        default=",".join(SETS),
        metavar="A,B",
        help="comma-separated data set folder names under --data-root (any layout edgeseg reads)",
    )
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument(
        "--minutes",
        type=positive_float,
        default=DEFAULT_MINUTES,
        metavar="M",
        help="training budget per model (2 models per set)",
    )
    budget.add_argument(
        "--steps",
        type=positive_int,
        metavar="N",
        help="optimiser steps per model instead of minutes (2000: what `edgeseg train DATA` "
        "does; default: what --minutes buys)",
    )
    budget.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_MINUTES:g} minutes per model (smoke run; not with --minutes or --steps)",
    )
    ap.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=MIOU",
        help="an mIoU target (0-1) for a set in --sets (repeatable), e.g. camvid=0.45 "
        "(built in: isbi2012_membrane=0.75, dubai_aerial=0.62)",
    )
    ap.add_argument(
        "--ignore-class",
        action="append",
        default=[],
        metavar="NAME",
        help="leave this class out where a set lists it, as `edgeseg train --ignore-class` "
        "(repeatable; any case), e.g. CamVid's Void",
    )
    ap.add_argument(
        "--runs", type=positive_int, default=50, metavar="N", help="timed invokes per model"
    )
    ap.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="TensorFlow intra- and inter-op threads for training (0: all cores)",
    )
    ap.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write the rows as JSON here (default: not written)",
    )
    args = ap.parse_args()
    minutes = QUICK_MINUTES if args.quick else args.minutes
    names = list(dict.fromkeys(s.strip() for s in args.sets.split(",") if s.strip()))
    if not names:
        ap.error(f"--sets {args.sets!r}: no set names; e.g. --sets {SETS[0]}")
    targets: dict[str, float] = {}
    for item in args.target:
        name, _, value = item.partition("=")
        try:
            miou = float(value)
        except ValueError:
            ap.error(f"--target {item}: expected NAME=MIOU, e.g. camvid=0.45")
        if not 0.0 < miou <= 1.0:
            ap.error(f"--target {item}: mIoU is a fraction in (0, 1], e.g. camvid=0.45")
        if name.strip() not in names:
            ap.error(f"--target {item}: {name.strip()!r} is not in --sets ({', '.join(names)})")
        targets[name.strip()] = miou
    root = require_folder(
        args.data_root, "--data-root", "pass --data-root DIR or set EDGESEG_SHARED_DATA"
    )
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        there = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        input_error(
            f"--sets: {', '.join(repr(n) for n in missing)} not found under {root}; "
            f"available: {', '.join(there) or 'none'}"
        )
    for name in names:  # layout and class names now, not after another set's half hour
        check_dataset(root / name, "--sets")
    check_output_file(args.json, "--json")
    budget_text = f"{args.steps} optimiser steps" if args.steps else f"{minutes:g} min of training"

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one process trains many models: retracing notes
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    print_machine()
    log(f"budget: {budget_text} per model")
    rows: list[Row] = []
    failed: list[tuple[str, str]] = []  # (set, why it was not measured)
    with scratch_dir("bench-train-quality-") as tmp:
        for name in names:
            data = root / name
            try:
                rows += run_set(
                    data,
                    tmp / name,
                    minutes,
                    args.runs,
                    log,
                    args.steps,
                    tuple(args.ignore_class),
                )
            except Exception as exc:  # one unusable set must not hide the others' numbers
                why = f"{type(exc).__name__}: {first_line(exc)}"
                log(f"skip {name}: {why}")
                failed.append((name, why))

    print(f"\nbudget {budget_text} per model; {machine()}")
    columns = ["dataset", "recipe", "input", "steps", "train min", "float mIoU", "model mIoU"]
    columns += ["int8 mIoU", "agreement (model)", "agreement (float)", "GMAC/frame"]
    columns += ["int8 invoke ms"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print(
            f"| {r.dataset} | {r.recipe} | {r.size[0]}x{r.size[1]} "
            f"| {r.steps}{f' of {r.planned}' if r.steps < r.planned else ''}"
            f"{' (XLA)' if r.xla else ''} | {r.train_min:.1f} "
            f"| {r.float_miou:.3f} | {r.model_miou:.3f} | {r.int8_miou:.3f} "
            f"| {100 * r.agreement:.2f}% | {100 * r.agreement_float:.2f}% "
            f"| {r.gmacs:.2f} | {r.invoke_ms:.1f} |"
        )
    results = verdicts(rows, targets)
    # a set that was not measured is no PASS: a run that measured nothing must not exit 0
    results += [(f"{name} not measured ({why})", False) for name, why in failed]
    for target, met in results:
        print(f"{'met   ' if met else 'MISSED'} {target}")
    if args.json:
        from edgeseg.core.fileio import write_json

        write_json(args.json, [r.__dict__ for r in rows])
    return 0 if results and all(met for _, met in results) else 1


if __name__ == "__main__":
    # as the CLI: the converter's and LiteRT's native lines (fd 2) are not shown; log() still is
    run_quietly(main)
