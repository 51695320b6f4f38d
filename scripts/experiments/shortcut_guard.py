"""Shortcut guard and signal probe for the simulated dataset.

Two logistic regressions, trained on the train split and scored on the test split:

* *shortcut guard*: nuisance features only (per-channel mean and standard deviation, mean HSV
  saturation). It must stay near chance (<= 65 %), or a detector could tell the classes apart
  without looking at any recapture trace;
* *signal probe*: the log power spectrum of the Laplacian-filtered grey patch, pooled on a
  coarse 2-D grid. It should separate the classes well: the task is learnable from the cue.

Run::

    python scripts/experiments/shortcut_guard.py --size 64 --count 3000 --seed 0
    python scripts/experiments/shortcut_guard.py --simulator v2 --size 64 --count 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])
SPECTRUM_GRID = 8  # pooled spectrum is SPECTRUM_GRID x SPECTRUM_GRID


def nuisance_features(images: np.ndarray) -> np.ndarray:
    """Per-channel mean and std, and mean saturation: [N, 7]."""
    x = images.astype(np.float64) / 255.0
    high, low = x.max(axis=-1), x.min(axis=-1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-12), 0.0)
    return np.concatenate(
        [x.mean(axis=(1, 2)), x.std(axis=(1, 2)), saturation.mean(axis=(1, 2))[:, None]], axis=1
    )


def spectrum_features(images: np.ndarray) -> np.ndarray:
    """Pooled log power spectrum of the Laplacian of the grey patch: [N, SPECTRUM_GRID**2]."""
    grey = images.astype(np.float64) @ LUMA
    laplacian = (
        4 * grey[:, 1:-1, 1:-1]
        - grey[:, :-2, 1:-1]
        - grey[:, 2:, 1:-1]
        - grey[:, 1:-1, :-2]
        - grey[:, 1:-1, 2:]
    )
    power = np.abs(np.fft.fftshift(np.fft.fft2(laplacian), axes=(1, 2))) ** 2
    n, side = power.shape[0], power.shape[1] // SPECTRUM_GRID * SPECTRUM_GRID
    power = power[:, :side, :side]
    block = side // SPECTRUM_GRID
    pooled = power.reshape(n, SPECTRUM_GRID, block, SPECTRUM_GRID, block).mean(axis=(2, 4))
    return np.log(pooled.reshape(n, -1) + 1e-3)


def probe_accuracy(features, train_split, test_split) -> float:
    """Test accuracy of a standardised logistic regression trained on the train split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (x_train, y_train), (x_test, y_test) = train_split, test_split
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(features(x_train), y_train)
    return float(model.score(features(x_test), y_test))


def load(size: int, count: int, seed: int, split: str, workers: int | None,
         simulator: str = "v1"):
    """Images [N, S, S, 3] and labels [N] of one simulated split (simulator "v1" or "v2")."""
    from tfrecap.data import generate
    from tfrecap.data.simulator import PARAMS_BY_VERSION

    examples = generate.generate_split(size, count, seed, split, workers=workers,
                                       params=PARAMS_BY_VERSION[simulator])
    return np.stack([e.image for e in examples]), np.array([e.label for e in examples])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--count", type=int, default=3000, help="examples per class, all splits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--simulator", choices=("v1", "v2"), default="v1")
    args = parser.parse_args()
    start = time.perf_counter()
    train = load(args.size, args.count, args.seed, "train", args.workers, args.simulator)
    test = load(args.size, args.count, args.seed, "test", args.workers, args.simulator)
    print(f"generated {len(train[1])} train + {len(test[1])} test patches "
          f"in {time.perf_counter() - start:.1f} s")
    for name, features in (("shortcut (nuisance)", nuisance_features),
                           ("signal (spectrum)", spectrum_features)):
        accuracy = probe_accuracy(features, train, test)
        print(f"{name:20s} test accuracy {accuracy:.3f}  "
              f"(train n={len(train[1])}, test n={len(test[1])})")


if __name__ == "__main__":
    main()
