"""Which part of simulator v2 makes its recaptures sharper than its originals? No training.

`spectral_probe.py --softness` found v2's recaptures carrying more pixel-scale detail than its
originals, on both halves of the probe's split against the score's null (``--components``),
while real photos of screens without a grid carry little or none (docs/real_photos.md). This
script simulates the same number of dead-leaves pairs under v2 and under each variant given
(``--variant "NAME KEY=VALUE ..."``, the assignments of ``data synth --param``), and gives
for each the softness score's AUC ("softer = screen"; below 0.5 the recaptures are sharper),
overall and on each half of the recaptures split at their median periodicity probe score, as
the probe does. A variant that brings both halves to the null (``no_screen``) has found the
source.

    python scripts/experiments/softness_by_variant.py --pairs 150 \\
        --variant "no_sharpen sharpen_prob=0" --variant "resolved_pitch pitch=3,6"

``--components`` also measures v2 (rows named after the stand-in) and every variant given (rows
``NAME+STAND_IN``, the variant's own null) with its screen replaced, within this process, by two
stand-ins: ``no_screen`` (the recapture is a second capture of the scene itself, with the
recapture's own pose and camera: the score's null, which is not 0.5 on the halves, because a
tile that the probe finds less periodic tends to be one with more broadband fine detail) and
``no_subpixel_mosaic`` (the screen with each display pixel lit uniformly over its area,
``display.recapture_light(..., mosaic=False)``).

Dead-leaves scenes only (the bundled photos need a split's regions); pairs are seeded
``--seed + i``, the same for every variant, so variants differ only by their parameters.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shlex
import sys
from pathlib import Path

import numpy as np

# The sibling spectral_probe.py imports by name, as scripts/benchmark.py does with
# scripts/bench/; it is imported where used (once per process: Python caches it).
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``"NAME KEY=VALUE ..."`` -> (NAME, {KEY: VALUE}); the name must not hold a ``=``."""
    words = shlex.split(text)
    if not words or "=" in words[0]:
        raise ValueError(f"a variant is 'NAME KEY=VALUE ...', got {text!r}")
    from tfrecap.data.simulator.overrides import parse_assignments

    return words[0], parse_assignments(words[1:])


COMPONENTS = ("no_screen", "no_subpixel_mosaic")


@contextlib.contextmanager
def screen_replaced(component: str):
    """Within the block, v2's recaptures are made by the stand-in ``component``."""
    from tfrecap.data.simulator.v2 import display

    real = display.recapture_light
    if component == "no_screen":
        def stand_in(scene, pose, screen, window, params):
            return display.original_light(scene, pose, window)
    elif component == "no_subpixel_mosaic":
        stand_in = functools.partial(real, mosaic=False)
    else:
        raise ValueError(f"unknown component {component!r}: use one of {', '.join(COMPONENTS)}")
    display.recapture_light = stand_in
    try:
        yield
    finally:
        display.recapture_light = real


def variant_rows(params, pairs: int, seed: int, size: int = 64) -> list[dict]:
    """Label, periodicity probe and softness score of ``pairs`` dead-leaves pairs."""
    import spectral_probe as probe

    from tfrecap.data.simulator import simulate_pair

    images, labels = [], []
    for i in range(pairs):
        for label, image in enumerate(simulate_pair(None, size, np.random.default_rng(seed + i),
                                                    params)):
            images.append(image)
            labels.append(label)
    images = np.stack(images).astype(np.float32)
    periodic = probe.periodicity_scores(images)
    softness = -probe.fine_detail_ratios(images)
    return [{"label": y, "probe": float(p), "detector": float(s)}
            for y, p, s in zip(labels, periodic, softness, strict=True)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[],
                        help='"NAME KEY=VALUE ..." (repeatable); v2 itself is always measured')
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--components", action="store_true",
                        help="also measure v2 and every variant with its screen replaced by "
                             f"the stand-ins {' and '.join(COMPONENTS)} (rows NAME+STAND_IN)")
    parser.add_argument("--stand-ins", default=",".join(COMPONENTS),
                        help="with --components: which stand-ins, comma-separated (no_screen "
                             "alone gives each variant its null)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.pairs < 2:
        parser.error(f"--pairs must be at least 2, got {args.pairs}")
    stand_ins = [c.strip() for c in args.stand_ins.split(",") if c.strip()]
    unknown = [c for c in stand_ins if c not in COMPONENTS]
    if unknown or not stand_ins:
        parser.error(f"--stand-ins must name some of {', '.join(COMPONENTS)}, got "
                     f"{args.stand_ins!r}")

    from tfrecap.data.simulator import V2_PARAMS
    from tfrecap.data.simulator.overrides import ParamOverrideError, with_overrides

    variants = {"v2": V2_PARAMS}
    for text in args.variant:
        try:
            name, assignments = parse_variant(text)
            if "+" in name:
                raise ValueError(f"the name {name!r} holds a '+', which names the stand-in "
                                 f"rows of --components")
            if name in variants or name in COMPONENTS:
                raise ValueError(f"the name {name!r} is taken (v2 is always measured; give "
                                 f"each variant its own name)")
            variants[name] = with_overrides(V2_PARAMS, assignments)
        except (ValueError, ParamOverrideError) as err:
            parser.error(f"--variant {text!r}: {err}")
    import spectral_probe as probe

    out = {"pairs": args.pairs, "seed": args.seed, "size": 64, "scenes": "dead leaves",
           "variants": {}}
    runs = [(name, params, None) for name, params in variants.items()]
    if args.components:
        # v2's stand-in rows keep their bare names ("no_screen"); a variant's are NAME+STAND_IN,
        # its own null (a burst, say, changes the originals too).
        runs += [(component if name == "v2" else f"{name}+{component}", params, component)
                 for name, params in variants.items() for component in stand_ins]
    print("| variant | softness AUC, all | most periodic half | other half |")
    print("|---|---|---|---|")
    for name, params, component in runs:
        with screen_replaced(component) if component else contextlib.nullcontext():
            summary = probe.summarise(variant_rows(params, args.pairs, args.seed))
        base = name.split("+")[0] if component else name
        record = {"params": [t for t in args.variant if shlex.split(t)[0] == base],
                  "fingerprint": params.fingerprint(),
                  **({"screen_replaced_by": component} if component else {}),
                  "all": summary["detector_auc"],
                  "periodic_half": summary["screens_periodic"]["detector_auc"],
                  "other_half": summary["screens_not_periodic"]["detector_auc"],
                  "probe_auc": summary["probe_auc"]}
        out["variants"][name] = record
        print(f"| {name} | {record['all']:.3f} | {record['periodic_half']:.3f} | "
              f"{record['other_half']:.3f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
