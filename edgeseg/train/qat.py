"""Quantisation-aware models: a trained Keras model rebuilt with the int8 arithmetic simulated, so
that validation, `edgeseg eval` and `edgeseg check` judge what the converted int8 model computes.

`quantize_model` folds every BatchNorm into its convolution, puts weights (per output channel)
and biases on the grids TFLite uses, and rounds activations exactly where the int8 model
requantises them (layers in `qat_layers`), with ranges calibrated on training frames: after a
conv (+ BN + ReLU) chain, an Add or a Concatenate, the input normalisation and the logits. A
tensor whose only consumer is a Concatenate takes the concatenation's grid, as the converter
gives it; one that also feeds something else keeps its own and is requantised; max-pooling,
zero-padding and up-sampling keep their input's grid. The result converts without calibration
(`edgeseg convert` reads its fake-quant ranges) and its class maps match the int8 model's to
within float rounding (README "The quantisation-aware model").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import layers

from edgeseg.core.errors import ModelError
from edgeseg.train.qat_layers import (
    INPUT_RANGE,
    FakeQuant,
    QuantConv,
    QuantRescale,
    QuantResize,
    Requantize,
    exporting,
)

__all__ = ["exporting", "is_quantized", "quantize_model"]

_SAME_SCALE = (layers.MaxPooling2D, layers.ZeroPadding2D, layers.Reshape, layers.Cropping2D)
_IDENTITY = (layers.Dropout, layers.SpatialDropout2D, layers.GaussianNoise)


# === Graph ===


@dataclass
class _Step:
    layer: Any
    ins: list[int]
    outs: list[int]


@dataclass
class _Graph:
    """A (possibly nested) functional model flattened to its leaf layers, tensors by id."""

    input_id: int
    output_id: int
    steps: list[_Step] = field(default_factory=list)
    consumers: dict[int, list[_Step]] = field(default_factory=dict)


def _flatten(model: keras.Model) -> _Graph:
    alias: dict[int, int] = {}

    def resolve(t: int) -> int:
        while t in alias:
            t = alias[t]
        return t

    def walk(m: keras.Model, steps: list[_Step]) -> None:
        for layer in m.layers:
            for i, node in enumerate(layer._inbound_nodes):
                if f"{id(layer)}_ib-{i}" not in m._nodes:
                    continue
                ins = [resolve(id(t)) for t in node.input_tensors]
                outs = [id(t) for t in node.output_tensors]
                if isinstance(layer, layers.InputLayer):
                    continue
                if isinstance(layer, keras.Model):
                    for inner, outer in zip(layer.inputs, ins, strict=True):
                        alias[id(inner)] = outer
                    walk(layer, steps)
                    for inner, outer_id in zip(layer.outputs, outs, strict=True):
                        alias[outer_id] = resolve(id(inner))
                elif isinstance(layer, _IDENTITY):
                    alias[outs[0]] = ins[0]
                else:
                    steps.append(_Step(layer, ins, outs))

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError("quantisation-aware training needs a model with one input and one output")
    graph = _Graph(id(model.inputs[0]), 0)
    walk(model, graph.steps)
    graph.output_id = resolve(id(model.outputs[0]))
    for step in graph.steps:
        for t in set(step.ins):
            graph.consumers.setdefault(t, []).append(step)
    return graph


def _activation_name(layer: Any) -> str | None:
    """'relu' / 'relu6' / 'linear' for a layer that only applies one of those, else None."""
    if isinstance(layer, layers.ReLU):
        if float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            return None
        mv = layer.max_value
        return "relu" if mv is None else ("relu6" if float(mv) == 6.0 else None)
    if isinstance(layer, layers.Activation):
        name = getattr(layer.activation, "__name__", "")
        return name if name in ("relu", "relu6", "linear") else None
    return None


_CONVS = (layers.Conv2DTranspose, layers.DepthwiseConv2D, layers.Conv2D)


@dataclass
class _Chain:
    """A convolution and the BatchNorm / activation fused into it."""

    conv: Any
    bn: Any | None
    activation: str
    out: int
    members: list[_Step]


def _chain(graph: _Graph, step: _Step) -> _Chain:
    conv = step.layer
    act = getattr(getattr(conv, "activation", None), "__name__", "linear")
    if act == "softmax" and step.outs[0] == graph.output_id:
        act = "linear"  # the head: logits here, softmax appended after
    if act not in ("linear", "relu", "relu6"):
        raise ModelError(f"layer {conv.name}: activation {act!r} cannot be fused for int8")
    members, out, bn = [step], step.outs[0], None
    nxt = graph.consumers.get(out, [])
    if len(nxt) == 1 and isinstance(nxt[0].layer, layers.BatchNormalization):
        bn = nxt[0].layer
        members.append(nxt[0])
        out = nxt[0].outs[0]
        nxt = graph.consumers.get(out, [])
    if act == "linear" and len(nxt) == 1 and _activation_name(nxt[0].layer) is not None:
        act = str(_activation_name(nxt[0].layer))
        members.append(nxt[0])
        out = nxt[0].outs[0]
    return _Chain(conv, bn, act, out, members)


def _folded(chain: _Chain) -> tuple[np.ndarray, np.ndarray, str]:
    """(kernel, bias, kind) with the BatchNorm folded into the convolution."""
    conv = chain.conv
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    kind = (
        "transpose"
        if isinstance(conv, layers.Conv2DTranspose)
        else "depthwise"
        if isinstance(conv, layers.DepthwiseConv2D)
        else "conv"
    )
    k = kernel.shape
    channels = int({"conv": k[3], "depthwise": k[2] * k[3], "transpose": k[2]}[kind])
    bias = np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias else np.zeros(channels)
    if chain.bn is not None:
        bn = chain.bn
        gamma = bn.gamma.numpy() if bn.scale else np.ones(channels)
        beta = bn.beta.numpy() if bn.center else np.zeros(channels)
        mul = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
        bias = (bias - bn.moving_mean.numpy()) * mul + beta
        if kind == "conv":
            kernel = kernel * mul
        elif kind == "depthwise":
            kernel = kernel * mul.reshape(kernel.shape[2], kernel.shape[3])
        else:
            kernel = kernel * mul.reshape(1, 1, -1, 1)
    return kernel.astype(np.float32), bias.astype(np.float32), kind


def _calibrate(
    graph: _Graph, wanted: set[int], frames: Iterable[np.ndarray], batch: int = 8
) -> dict[int, tuple[float, float]]:
    """Min and max of each `wanted` tensor of the float model over `frames` (raw pixels)."""
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    items = list(frames)
    for start in range(0, len(items), batch):
        env: dict[int, Any] = {graph.input_id: np.stack(items[start : start + batch])}
        for step in graph.steps:
            args = [env[t] for t in step.ins]
            out = step.layer(args if len(args) > 1 else args[0], training=False)
            values = out if isinstance(out, list | tuple) else [out]
            for t, value in zip(step.outs, values, strict=True):
                env[t] = value
                if t in wanted:
                    v = np.asarray(value)
                    lo[t] = min(lo.get(t, np.inf), float(v.min()))
                    hi[t] = max(hi.get(t, -np.inf), float(v.max()))
    return {t: (lo[t], hi[t]) for t in lo}


def is_quantized(model: keras.Model) -> bool:
    """Whether `model` was built by `quantize_model` (converts from its own fake-quant ranges)."""
    return any(isinstance(layer, FakeQuant | QuantConv) for layer in model.layers)


def quantize_model(model: keras.Model, frames: Iterable[np.ndarray]) -> keras.Model:
    """The quantisation-aware copy of `model`, its ranges calibrated on `frames` (raw model-size
    pixels, as `prepare_image` gives them). The copy ends in a softmax as `model` does."""
    if is_quantized(model):
        raise ModelError(f"model {model.name} is already quantisation-aware")
    graph = _flatten(model)
    if graph.steps and isinstance(graph.steps[-1].layer, layers.Softmax):
        graph.output_id = graph.steps[-1].ins[0]
        graph.steps = graph.steps[:-1]
    chains: dict[int, _Chain] = {}
    fused: set[int] = set()
    for step in graph.steps:
        if isinstance(step.layer, _CONVS) and id(step) not in fused:
            chain = _chain(graph, step)
            chains[id(step)] = chain
            fused.update(id(m) for m in chain.members[1:])

    def joins_concat(t: int) -> bool:
        users = graph.consumers.get(t, [])
        return (
            t != graph.output_id
            and len(users) == 1
            and isinstance(users[0].layer, layers.Concatenate)
        )

    wanted: set[int] = set()  # tensors with a grid of their own: calibrate their ranges
    for step in graph.steps:
        layer = step.layer
        if id(step) in chains and not joins_concat(chains[id(step)].out):
            wanted.add(chains[id(step)].out)
        elif isinstance(layer, layers.Concatenate | layers.Add):
            wanted.add(step.outs[0])
    ranges = _calibrate(graph, wanted, frames)
    for t in list(ranges):  # what feeds only a Concatenate is rounded once, to its grid
        if joins_concat(t):
            ranges[t] = ranges[graph.consumers[t][0].outs[0]]
    if wanted - set(ranges):
        raise ModelError("quantisation-aware training needs at least one calibration frame")
    return _rebuild(model, graph, chains, fused, ranges)


def _rebuild(
    model: keras.Model,
    graph: _Graph,
    chains: dict[int, _Chain],
    fused: set[int],
    ranges: dict[int, tuple[float, float]],
) -> keras.Model:
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name=model.inputs[0].name)
    input_quant = FakeQuant(*INPUT_RANGE, name="input_fq")
    env: dict[int, Any] = {graph.input_id: input_quant(inputs)}
    # each tensor's int8 grid as (lowest value, step)
    grid: dict[int, tuple[float, float]] = {graph.input_id: (input_quant.lo, input_quant.scale)}
    weights: list[tuple[QuantConv, np.ndarray, np.ndarray]] = []
    for step in graph.steps:
        layer = step.layer
        if id(step) in fused:
            continue
        args = [env[t] for t in step.ins]
        if id(step) in chains:
            chain = chains[id(step)]
            kernel, bias, kind = _folded(chain)
            out_range = ranges.get(chain.out)
            if step.ins[0] not in grid:
                raise ModelError(f"layer {layer.name}: its input has no int8 scale")
            qconv = QuantConv(
                kind,
                kernel.shape,
                layer.strides,
                layer.padding,
                getattr(layer, "dilation_rate", (1, 1)),
                chain.activation,
                in_scale=grid[step.ins[0]][1],
                out_range=out_range,
                name=f"{layer.name}_q",
            )
            env[chain.out] = qconv(args[0])
            weights.append((qconv, kernel, bias))
            if qconv.out_range is not None:
                lo, hi = qconv.out_range
                grid[chain.out] = (lo, (hi - lo) / 255.0)
            continue
        if isinstance(layer, layers.Rescaling):
            users = graph.consumers.get(step.outs[0], [])
            joined = len(users) == 1 and isinstance(users[0].layer, layers.Concatenate)
            rescale = QuantRescale(
                float(layer.scale),
                float(layer.offset),
                out_range=ranges[users[0].outs[0]] if joined else None,
                name=f"{layer.name}_q",
            )
            env[step.outs[0]] = rescale(args[0])
            grid[step.outs[0]] = rescale.grid
        elif isinstance(layer, layers.Concatenate | layers.Add):
            if isinstance(layer, layers.Concatenate):  # inputs on their own grids: requantised
                lo, hi = ranges[step.outs[0]]
                args = [
                    Requantize(grid[t][1], lo, hi, name=f"{layer.name}_rq{i}")(arg)
                    if t in grid  # else it took the concatenation's grid itself
                    else arg
                    for i, (t, arg) in enumerate(zip(step.ins, args, strict=True))
                ]
            merged = type(layer).from_config(layer.get_config())(args)
            fq = FakeQuant(*ranges[step.outs[0]], name=f"{layer.name}_fq")
            env[step.outs[0]] = fq(merged)
            grid[step.outs[0]] = (fq.lo, fq.scale)
        elif isinstance(layer, _SAME_SCALE) or (
            isinstance(layer, layers.UpSampling2D) and layer.interpolation == "nearest"
        ):
            env[step.outs[0]] = type(layer).from_config(layer.get_config())(args[0])
            grid[step.outs[0]] = grid[step.ins[0]]
        elif isinstance(layer, layers.UpSampling2D) and layer.interpolation == "bilinear":
            lo, step_size = grid[step.ins[0]]  # int8 RESIZE_BILINEAR keeps its input's grid
            resize = QuantResize(layer.size, lo, lo + 255.0 * step_size, name=f"{layer.name}_q")
            env[step.outs[0]] = resize(args[0])
            grid[step.outs[0]] = grid[step.ins[0]]
        else:
            raise ModelError(
                f"layer {layer.name}: quantisation-aware training does not support "
                f"{type(layer).__name__} layers"
            )
    logits = env[graph.output_id]
    outputs = layers.Softmax(name="probs")(logits)
    qat = keras.Model(inputs, outputs, name=f"{model.name}_qat")
    for qconv, kernel, bias in weights:
        qconv.set_weights([kernel, bias])
    return qat
