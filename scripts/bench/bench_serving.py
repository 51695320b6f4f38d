"""Latency and throughput of the exported ``classify_images`` signature.

Exports a full-width LaplacianCNN (untrained weights: speed does not depend on
them), reloads the SavedModel as a model server would, and times

* one 512×512 JPEG per call (64 tiles of 64×64): p50 and p99 latency;
* batches of 64 such JPEGs: images/s.

Run:
    python scripts/bench/bench_serving.py                 # full width, 64-px tiles, 512×512 JPEG
    python scripts/bench/bench_serving.py --widths 16,32,32,64,64 --calls 10

`measure()` is the same measurement as a function (used by scripts/benchmark.py).
"""

import argparse
import io
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from tfrecap import jsonio  # noqa: E402
from tfrecap.export import export_detector  # noqa: E402
from tfrecap.models import build_detector  # noqa: E402


def jpeg_bytes(side: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def measure(widths=(32, 64, 128, 256, 512), patch=64, side=512, calls=30, batch=64) -> dict:
    """Export, reload and time `classify_images` (see the module doc).

    Returns:
        Settings, `p50_ms` and `p99_ms` over `calls` single-JPEG calls (after 5 warm-up
        calls), and `images_per_s` for one timed call on `batch` JPEGs (after one warm-up).
    """
    widths = tuple(widths)
    detector = build_detector(input_shape=(patch, patch, 3), widths=widths)
    with tempfile.TemporaryDirectory() as root:
        version = export_detector(detector, root)
        classify = tf.saved_model.load(str(version)).signatures["classify_images"]
        one = tf.constant([jpeg_bytes(side)])
        for _ in range(5):  # warm-up: tracing and thread pools
            classify(image_bytes=one)
        latencies = []
        for _ in range(calls):
            start = time.perf_counter()
            out = classify(image_bytes=one)
            latencies.append(time.perf_counter() - start)
        tiles = int(out["patch_count"][0])
        many = tf.constant([jpeg_bytes(side, seed) for seed in range(batch)])
        classify(image_bytes=many)
        start = time.perf_counter()
        classify(image_bytes=many)
        throughput = batch / (time.perf_counter() - start)

    return {
        "schema_version": 1,
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "cpu_cores": len(os.sched_getaffinity(0)),
        "widths": list(widths),
        "patch": patch,
        "image": f"{side}x{side} JPEG",
        "tiles": tiles,
        "calls": calls,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "batch": batch,
        "images_per_s": throughput,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="32,64,128,256,512")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--side", type=int, default=512, help="JPEG side in pixels")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args(argv)

    widths = tuple(int(w) for w in args.widths.split(","))
    result = measure(widths, args.patch, args.side, args.calls, args.batch)
    print(f"classify_images, {result['image']} ({result['tiles']} tiles of {args.patch}px), "
          f"widths {args.widths}, {result['device']} x{result['cpu_cores']}: p50 "
          f"{result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms over {args.calls} calls; "
          f"batch {args.batch}: {result['images_per_s']:.1f} images/s")
    if args.json_out:
        jsonio.write_json(args.json_out, result)

if __name__ == "__main__":
    main()
