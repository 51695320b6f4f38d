"""Write whole synthetic v2 photos at two resolutions as folders, for the scale-rule checks.

Each photo is the phone's own JPEG at sensor resolution (``simulate_photo(..., sensor=True)``
with d = 4 on a 433×577 reference frame: about 4 MP), and the same photo resized (Lanczos) to
1155×866 (about 1 MP) and saved as JPEG 90, as a messaging app would. The folders
``OUT/4mp/{originals,recaptured}`` and ``OUT/1mp/{originals,recaptured}`` then go to
``tfrecap evaluate MODEL --originals ... --recaptured ...`` or to
``scripts/experiments/scale_and_aggregation.py`` (native tiles against the 1024 rule). The seeds
differ from the calibration photos' (those are `generate.photos` on the validation split).

Run::

    python scripts/experiments/synthetic_photo_folders.py /tmp/photos --count 20 --workers 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import sys
import time
from pathlib import Path

SEED = 20261201
REFERENCE = (433, 577)
SMALL = (1155, 866)  # width, height for Pillow


def render(index: int, out: Path) -> str:
    import dataclasses

    import numpy as np
    from PIL import Image

    from tfrecap.data.simulator import V2_PARAMS
    from tfrecap.data.simulator.v2.photo import simulate_photo

    params = dataclasses.replace(V2_PARAMS, downscale=(4.0, 4.0))
    rng = np.random.default_rng(np.random.SeedSequence([SEED, index]))
    label = index % 2
    big = simulate_photo(rng, label, *REFERENCE, params, sensor=True)
    folder = "recaptured" if label else "originals"
    name = f"photo_{index:04d}.jpg"
    Image.fromarray(big).save(out / "4mp" / folder / name, quality=95)
    Image.fromarray(big).resize(SMALL, Image.LANCZOS).save(out / "1mp" / folder / name,
                                                           quality=90)
    return name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=20, help="photos per class")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    for resolution in ("4mp", "1mp"):
        for folder in ("originals", "recaptured"):
            (args.out / resolution / folder).mkdir(parents=True, exist_ok=True)
    started = time.time()
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
        done = list(pool.map(render, range(2 * args.count), [args.out] * (2 * args.count)))
    print(f"{len(done)} photos at 2 resolutions in {args.out} ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
