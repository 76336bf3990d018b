"""Procedural top-down scenes for the synthetic dataset: textured ground, curved roads with lane
marks, buildings, trees and cars with sun shadows (camera effects live in synthetic.py).

Labels are exact by construction. Everything is drawn from one `numpy.random.Generator`, so a seed
fixes the scene. Sizes are relative to a `unit` (the frame's short side), so any resolution works.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

CLASS_NAMES: tuple[str, ...] = ("background", "road", "building", "vegetation", "vehicle")
PALETTE: tuple[tuple[int, int, int], ...] = (  # RGB, one per class
    (32, 32, 32),
    (128, 64, 128),
    (230, 120, 40),
    (60, 180, 75),
    (255, 225, 25),
)
BACKGROUND, ROAD, BUILDING, VEGETATION, VEHICLE = range(5)

_ROOFS = ((170, 85, 60), (150, 150, 150), (95, 95, 100), (185, 160, 120), (120, 75, 55))
_CARS = ((235, 235, 235), (30, 30, 35), (175, 30, 30), (40, 60, 160), (160, 165, 170), (90, 90, 95))


@dataclass
class Road:
    """A centreline sampled about 1 px apart, its unit normals and the paved width."""

    points: np.ndarray
    normals: np.ndarray
    width: float


@dataclass
class Vehicle:
    """A car at arc index `pos` of a road, `lane` px off its centreline, moving `speed` px/frame."""

    road: int
    pos: float
    lane: float
    speed: float
    length: float
    width: float
    color: tuple[int, int, int]


@dataclass
class Scene:
    """Static layers (RGB float32 image + class map) plus the cars drawn per frame on top."""

    image: np.ndarray
    label: np.ndarray
    roads: list[Road]
    vehicles: list[Vehicle] = field(default_factory=list)
    sun: tuple[float, float] = (0.0, 0.0)
    unit: float = 1.0


# === Textures ===


def _fbm(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Fractal value noise (zero mean, unit std) with features about `cell` pixels wide."""
    out = np.zeros((h, w), np.float32)
    for o in range(octaves):
        c = max(1.0, cell / 2**o)
        gh, gw = int(h / c) + 2, int(w / c) + 2
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        up = cv2.resize(grid, (int(gw * c), int(gh * c)), interpolation=cv2.INTER_CUBIC)
        out += up[:h, :w] / 2**o
    result: np.ndarray = (out - out.mean()) / (out.std() + 1e-6)
    return result


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float) -> np.ndarray:
    return np.asarray(rgb, np.float32) * rng.uniform(1 - amount, 1 + amount, 3).astype(np.float32)


def _shift(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    shifted: np.ndarray = cv2.warpAffine(
        mask, m, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_NEAREST
    )
    return shifted


# === Roads ===


def _make_road(
    rng: np.random.Generator, h: int, w: int, u: float, angle: float, center: tuple[float, float]
) -> Road:
    """A gently winding road through `center`, long enough to leave the canvas at both ends."""
    half = math.hypot(h, w) / 2 + u
    t = np.arange(-half, half, 1.0, dtype=np.float32)
    d = np.array([math.cos(angle), math.sin(angle)], np.float32)
    n = np.array([-d[1], d[0]], np.float32)
    amp, period = rng.uniform(0.03, 0.25) * u, rng.uniform(2.5, 6.0) * u
    off = amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    pts = np.array(center, np.float32) + t[:, None] * d + off[:, None] * n
    tan = np.gradient(pts, axis=0)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True) + 1e-6
    normals = np.stack([-tan[:, 1], tan[:, 0]], axis=1)
    return Road(pts, normals, float(rng.uniform(0.10, 0.17) * u))


def _draw_road(
    img: np.ndarray, lab: np.ndarray, road: Road, rng: np.random.Generator, u: float
) -> None:
    mask = np.zeros(lab.shape, np.uint8)
    cv2.polylines(mask, [np.round(road.points).astype(np.int32)], False, 1, int(road.width))
    asphalt = _jitter(rng, (118, 118, 124), 0.15)
    tex = 1 + 0.07 * _fbm(rng, lab.shape[0], lab.shape[1], 0.02 * u, 2)
    img[mask > 0] = (asphalt * tex[..., None])[mask > 0]
    lab[mask > 0] = ROAD
    paint = tuple(float(v) for v in _jitter(rng, (228, 228, 215), 0.05))
    thick = max(1, round(0.012 * u))
    step = np.linalg.norm(np.diff(road.points, axis=0), axis=1)
    arc = np.concatenate([[0], np.cumsum(step)])
    dash = (arc % (0.14 * u)) < 0.07 * u  # dashed centre line
    edges = np.flatnonzero(np.diff(dash.astype(np.int8)) != 0) + 1
    runs = np.split(np.arange(len(dash)), edges)
    lines = [np.round(road.points[r]).astype(np.int32) for r in runs if dash[r[0]] and len(r) > 1]
    if rng.random() < 0.5:  # solid edge lines on some roads
        for side in (-1, 1):
            off = road.normals * side * (road.width / 2 - 2 * thick)
            lines.append(np.round(road.points + off).astype(np.int32))
    cv2.polylines(img, lines, False, paint, thick)


# === Buildings and vegetation ===


def _building_polys(
    rng: np.random.Generator, c: np.ndarray, u: float, angle: float
) -> list[tuple[np.ndarray, float]]:
    """Roof polygons with a brightness each: a gable (two halves) or an L-shaped flat roof."""
    w, h = rng.uniform(0.14, 0.30) * u, rng.uniform(0.10, 0.20) * u
    rot = np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32
    )

    def place(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        local = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        corners: np.ndarray = np.round(local @ rot.T + c).astype(np.int32)
        return corners

    if rng.random() < 0.55:
        return [(place(-w / 2, -h / 2, w / 2, 0), 1.0), (place(-w / 2, 0, w / 2, h / 2), 0.78)]
    bw, bh = w * rng.uniform(0.35, 0.55), h * rng.uniform(1.5, 2.2)
    return [
        (place(-w / 2, -h / 2, w / 2, h / 2), 0.95),
        (place(w / 2 - bw, -h / 2, w / 2, bh - h / 2), 0.95),
    ]


def _tree_circles(
    rng: np.random.Generator, c: np.ndarray, u: float, bush: bool
) -> list[tuple[np.ndarray, int]]:
    r0 = rng.uniform(0.02, 0.035) * u if bush else rng.uniform(0.04, 0.08) * u
    k = int(rng.integers(2, 5)) if bush else int(rng.integers(3, 8))
    offs = rng.normal(0, 0.6 * r0, (k, 2))
    radii = r0 * rng.uniform(0.6, 1.0, k)
    return [
        (np.round(c + o).astype(int), max(2, round(r))) for o, r in zip(offs, radii, strict=True)
    ]


def _try_place(
    rng: np.random.Generator,
    shape: tuple[int, int],
    draw: Callable[[np.ndarray, np.ndarray], None],
    blocked: np.ndarray,
    max_overlap: float,
) -> np.ndarray | None:
    """Draw candidates until one overlaps `blocked` by at most `max_overlap` of its area."""
    for _ in range(25):
        c = np.array([rng.uniform(0, shape[1]), rng.uniform(0, shape[0])], np.float32)
        mask = np.zeros(shape, np.uint8)
        draw(mask, c)
        area = np.count_nonzero(mask)
        if area and np.count_nonzero(mask & blocked) <= max_overlap * area:
            return mask
    return None


def _add_buildings(
    rng: np.random.Generator, scene: Scene, road_zone: np.ndarray, angle: float, count: int
) -> tuple[np.ndarray, list[tuple[np.ndarray, float, np.ndarray]]]:
    """Place non-overlapping buildings off the road; returns their union and (poly, shade, rgb)."""
    h, w = scene.label.shape
    u = scene.unit
    bmask = np.zeros((h, w), np.uint8)
    roofs: list[tuple[np.ndarray, float, np.ndarray]] = []
    for i in range(count):
        polys = _building_polys(rng, np.zeros(2, np.float32), u, angle + rng.choice([0, np.pi / 2]))
        offset = np.zeros(2, np.int32)

        def draw(
            m: np.ndarray,
            c: np.ndarray,
            polys: list[tuple[np.ndarray, float]] = polys,
            offset: np.ndarray = offset,
        ) -> None:
            offset[:] = np.round(c)
            for p, _ in polys:  # one call each: fillPoly fills overlaps even-odd
                cv2.fillPoly(m, [p + offset], 1)

        mask = _try_place(rng, (h, w), draw, bmask | road_zone, 0.0 if i else 0.05)
        if mask is None:
            continue
        bmask |= mask
        color = _jitter(rng, _ROOFS[rng.integers(len(_ROOFS))], 0.12)
        roofs.extend((p + offset, shade, color) for p, shade in polys)
    return bmask, roofs


def _add_vegetation(
    rng: np.random.Generator, scene: Scene, blocked: np.ndarray, road_zone: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tree and bush blobs, few on roads, none on roofs; returns their union and colour layer."""
    h, w = scene.label.shape
    vmask = np.zeros((h, w), np.uint8)
    layer = np.zeros((h, w, 3), np.float32)
    for i in range(count):
        bush = i > 0 and rng.random() < 0.4
        circles = _tree_circles(rng, np.zeros(2), scene.unit, bush)

        def draw(
            m: np.ndarray, c: np.ndarray, circles: list[tuple[np.ndarray, int]] = circles
        ) -> None:
            for o, r in circles:
                cv2.circle(m, (int(c[0] + o[0]), int(c[1] + o[1])), r, 1, -1)

        avoid = blocked | road_zone if rng.random() < 0.8 else blocked
        mask = _try_place(rng, (h, w), draw, avoid, 0.1)
        if mask is None:
            continue
        layer[mask > 0] = _jitter(rng, (62, 104, 44) if bush else (40, 82, 34), 0.18)
        vmask |= mask
    return vmask, layer


def _place_vehicles(rng: np.random.Generator, scene: Scene, count: int) -> list[Vehicle]:
    """Cars on visible stretches of road, in both lanes, never on top of one another."""
    h, w = scene.label.shape
    u = scene.unit
    cars: list[Vehicle] = []
    taken: list[np.ndarray] = []
    for _ in range(count * 4):
        if len(cars) >= count:
            break
        k = int(rng.integers(len(scene.roads)))
        road = scene.roads[k]
        inside = np.flatnonzero(
            (road.points[:, 0] > 0.05 * u)
            & (road.points[:, 0] < w - 0.05 * u)
            & (road.points[:, 1] > 0.05 * u)
            & (road.points[:, 1] < h - 0.05 * u)
        )
        if not inside.size:
            continue
        pos = int(rng.choice(inside))
        lane = float(rng.choice([-1, 1]) * road.width * rng.uniform(0.18, 0.3))
        xy = road.points[pos] + road.normals[pos] * lane
        length = float(rng.uniform(0.07, 0.10) * u)
        if any(np.linalg.norm(xy - t) < 1.3 * length for t in taken):
            continue
        taken.append(xy)
        speed = float(np.sign(lane) * rng.uniform(0.004, 0.012) * u)
        r, g, b = (int(v) for v in _jitter(rng, _CARS[rng.integers(len(_CARS))], 0.08).clip(0, 255))
        cars.append(
            Vehicle(k, pos, lane, speed, length, length * rng.uniform(0.45, 0.55), (r, g, b))
        )
    return cars


def draw_vehicles(
    img: np.ndarray, lab: np.ndarray, scene: Scene, offset_x: int = 0, t: int = 0
) -> None:
    """Draw the scene's cars at frame `t` into a crop starting `offset_x` px into the canvas."""
    shadow = np.zeros(lab.shape, np.uint8)
    bodies = []
    for car in scene.vehicles:
        road = scene.roads[car.road]
        i = round(car.pos + car.speed * t) % len(road.points)
        nx, ny = road.normals[i]
        heading = math.atan2(-nx, ny) + (0.0 if car.speed >= 0 else math.pi)
        c, s = math.cos(heading), math.sin(heading)
        center = road.points[i] + road.normals[i] * car.lane - np.array([offset_x, 0], np.float32)

        def quad(
            x0: float,
            x1: float,
            y0: float,
            y1: float,
            center: np.ndarray = center,
            c: float = c,
            s: float = s,
        ) -> np.ndarray:
            local = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
            turn = np.array([[c, s], [-s, c]], np.float32)
            corners: np.ndarray = np.round(local @ turn + center).astype(np.int32)
            return corners

        half_l, half_w = car.length / 2, car.width / 2
        body = quad(-half_l, half_l, -half_w, half_w)
        cv2.fillPoly(
            shadow, [body + np.round(np.array(scene.sun, np.float32) * 0.4).astype(np.int32)], 1
        )
        glass = [
            quad(0.15 * half_l, 0.55 * half_l, -0.8 * half_w, 0.8 * half_w),
            quad(-0.8 * half_l, -0.6 * half_l, -0.75 * half_w, 0.75 * half_w),
        ]
        bodies.append((body, glass, car.color))
    img[shadow > 0] *= 0.55
    for body, glass, color in bodies:
        cv2.fillPoly(img, [body], tuple(float(v) for v in color))
        cv2.fillPoly(img, glass, (25.0, 30.0, 38.0))
        cv2.fillPoly(lab, [body], VEHICLE)


# === Scene ===


def render_scene(rng: np.random.Generator, h: int, w: int, unit: float | None = None) -> Scene:
    """Static layers of an h x w scene; a wide canvas (w >> unit) is a strip to pan video over."""
    u = float(unit or min(h, w))
    areas = h * w / (u * u)
    grass, soil = _jitter(rng, (88, 128, 58), 0.15), _jitter(rng, (138, 112, 78), 0.15)
    patches = 1 / (1 + np.exp(-2.5 * _fbm(rng, h, w, 0.35 * u) - rng.uniform(-1.5, 1.5)))
    fine = _fbm(rng, h, w, 0.015 * u, octaves=2)
    img = grass * (1 - patches[..., None]) + soil * patches[..., None]
    img = (img * (1 + 0.12 * fine[..., None])).astype(np.float32)
    scene = Scene(img, np.zeros((h, w), np.uint8), [], unit=u)

    strip = w > 1.5 * u
    if strip:
        angle = rng.uniform(-0.04, 0.04)  # along the strip, so the pan keeps it in view
        center = (w / 2, h / 2 + rng.uniform(-0.15, 0.15) * h)
    else:
        angle = rng.uniform(0, np.pi)
        center = (rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h)
    scene.roads.append(_make_road(rng, h, w, u, angle, center))
    n_cross = int(rng.poisson(0.3 * w / u)) if strip else int(rng.random() < 0.35)
    for _ in range(n_cross):
        a2 = angle + np.pi / 2 + rng.uniform(-0.5, 0.5)
        c2 = (rng.uniform(0, w), rng.uniform(0.3, 0.7) * h)
        scene.roads.append(_make_road(rng, h, w, u, a2, c2))
    for road in scene.roads:
        _draw_road(scene.image, scene.label, road, rng, u)

    kernel = np.ones((3, 3), np.uint8)
    road_zone = cv2.dilate(scene.label, kernel, iterations=max(1, int(0.02 * u)))
    bmask, roofs = _add_buildings(rng, scene, road_zone, angle, max(1, rng.poisson(2.2 * areas)))
    n_veg = max(1, rng.poisson(4 * areas)) + rng.poisson(3 * areas)
    vmask, vlayer = _add_vegetation(rng, scene, bmask, road_zone, n_veg)

    a = rng.uniform(0, 2 * np.pi)
    sun = rng.uniform(0.015, 0.04) * u * np.array([math.cos(a), math.sin(a)], np.float32)
    scene.sun = (float(sun[0]), float(sun[1]))
    scene.image[_shift(bmask | vmask, *scene.sun) > 0] *= rng.uniform(0.5, 0.65)

    roof_layer = np.zeros_like(img)
    for poly, shade, color in roofs:
        cv2.fillPoly(roof_layer, [poly], tuple(float(v) for v in color * shade))
        cv2.polylines(
            roof_layer, [poly], True, tuple(float(v) for v in color * 0.6), max(1, round(0.008 * u))
        )
    roof_layer *= 1 + 0.06 * fine[..., None]
    scene.image[bmask > 0] = roof_layer[bmask > 0]
    scene.label[bmask > 0] = BUILDING

    crown = cv2.GaussianBlur(vmask.astype(np.float32), (0, 0), 0.025 * u)
    lit = _shift(crown, -scene.sun[0] * 0.5, -scene.sun[1] * 0.5)
    leaf = 1 + 0.3 * _fbm(rng, h, w, 0.012 * u, octaves=2)
    trees = vlayer * ((0.6 + 0.7 * lit) * leaf)[..., None]
    scene.image[vmask > 0] = trees[vmask > 0]
    scene.label[vmask > 0] = VEGETATION

    scene.vehicles = _place_vehicles(rng, scene, max(1, rng.poisson(2.5 * w / u)))
    return scene
