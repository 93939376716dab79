"""Benchmark: reference-image intake of a 12-megapixel JPEG photo.

Compares ``core.images.normalize_reference`` with the plain approach (full-size decode,
``convert("RGB")``, ``resize((2048, 1536))``, re-encode as JPEG quality 90) on the same
photo-like 4000x3000 JPEG (noise over gradients, quality 90, several MB), in one run.

Run: ``.venv/bin/python benchmarks/bench_intake.py [--repeat N]``. Prints one JSON line.
Target: ``speedup`` >= 3.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.generation.intake import normalize_reference

WIDTH, HEIGHT = 4000, 3000


def photo_like_jpeg() -> bytes:
    """A 4000x3000 JPEG that compresses like a photo: smooth gradients plus sensor-like noise."""
    size = (WIDTH, HEIGHT)
    horizontal = Image.linear_gradient("L").rotate(90).resize(size)
    vertical = Image.linear_gradient("L").resize(size)
    # Large soft shapes (low-frequency detail) plus fine grain (high-frequency detail).
    blobs = Image.effect_noise((WIDTH // 64, HEIGHT // 64), 90).resize(
        size, Image.Resampling.BICUBIC
    )
    grain = Image.effect_noise(size, 18)
    red = Image.blend(Image.blend(horizontal, blobs, 0.5), grain, 0.35)
    green = Image.blend(Image.blend(vertical, blobs, 0.4), grain, 0.35)
    blue = Image.blend(Image.blend(horizontal, vertical, 0.5), grain, 0.35)
    photo = Image.merge("RGB", (red, green, blue))
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def plain(data: bytes) -> bytes:
    """The straightforward approach the project is measured against."""
    im = Image.open(io.BytesIO(data)).convert("RGB").resize((2048, 1536))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def project(data: bytes) -> bytes:
    """The project's intake."""
    return normalize_reference(data, filename="photo.jpg").data


def timed_ms(func: Callable[[bytes], bytes], data: bytes, repeat: int) -> float:
    """Median wall time in milliseconds over ``repeat`` runs, after one warm-up run."""
    func(data)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func(data)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _cores() -> int:
    """Cores this process may use, as ``nproc`` reports them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def main() -> None:
    """Build the photo, time both approaches interleaved, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per approach")
    args = parser.parse_args()

    data = photo_like_jpeg()
    out = normalize_reference(data, filename="photo.jpg")
    assert out.content_type == "image/jpeg" and max(out.width, out.height) <= 2048

    # Interleave the two so drifts in machine load hit both alike.
    project_runs, plain_runs = [], []
    for _ in range(3):
        project_runs.append(timed_ms(project, data, args.repeat))
        plain_runs.append(timed_ms(plain, data, args.repeat))
    project_ms = min(project_runs)
    plain_ms = min(plain_runs)

    print(
        json.dumps(
            {
                "benchmark": "intake_12mp_jpeg",
                "input_bytes": len(data),
                "project_ms": round(project_ms, 1),
                "plain_ms": round(plain_ms, 1),
                "speedup": round(plain_ms / project_ms, 2),
                "python": platform.python_version(),
                "machine": f"{_cores()} cores",
            }
        )
    )


if __name__ == "__main__":
    main()
