"""Benchmark the secure train step against the plain step, side by side in one run.

Every variant runs ``SecureForensicModel.train_step`` wrapped in one
``tf.function`` (XLA off, as on CPU in training), on the same random batch, with
the same initial weights and the same harness:

* ``keras``          reference: the detector with Keras' built-in ``train_step``;
* ``plain``          lambda = 0, k = 0: Yang's baseline (must cost what ``keras`` does);
* ``fusion``         k > 0 only: FGSM batch fusion (eqs. 2, 7);
* ``penalty``        lambda > 0 only: input-gradient penalty (eq. 5);
* ``penalty+fusion`` the secure step of Zhao et al. 2018;
* ``pgd_at``         PGD-AT, k inner steps (Madry et al. 2018);
* ``trades``         TRADES, k inner steps on the KL (Zhang et al. 2019);
* ``fast_fgsm``      one FGSM step from a random start (Wong et al. 2020);
* ``fast_fgsm+gradalign`` the same with GradAlign (Andriushchenko & Flammarion 2020).

Each adversarial-training variant also carries ``floor_vs_plain``, an estimate of its floor
in units of the plain step (:func:`floor_vs_plain`): the forward-backward passes it makes,
k + 1 for PGD-AT. An estimate, not a bound: an input-gradient pass skips the weight
gradients, so a step can come in under it (the CPU clock often does).

Variants are timed in interleaved rounds, so a burst of load from another
process hurts all variants alike. Two clocks: wall time (fastest round, the
least disturbed) and this process's CPU time (median round), which other
processes on a shared machine disturb much less. On shared CPUs the absolute
images/s mean little; the ratios (cost relative to ``plain``) are the figure
to read, and the CPU-time ratio the steadier one.

Run:
    python scripts/bench/bench_train_step.py                      # full width, 64x64, batch 64
    python scripts/bench/bench_train_step.py --widths 8,16,16,32,32 --steps 3 --rounds 2

`measure()` is the same measurement as a function (used by scripts/benchmark.py);
it also takes a dtype policy and XLA per variant, to compare those side by side.
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrecap import jsonio  # noqa: E402
from tfrecap.models import DEFAULT_WIDTHS, SecureForensicModel, build_detector  # noqa: E402

SCHEMA_VERSION = 1
STEP_NAMES = ("keras", "plain", "fusion", "penalty", "penalty+fusion")
DEFENCE_STEP_NAMES = ("pgd_at", "trades", "fast_fgsm", "fast_fgsm+gradalign")
# The inner attacks' settings, as in the demo_pgd_at, demo_trades and demo_fast_fgsm pipelines.
ATTACK_EPS, ATTACK_STEPS, GRAD_ALIGN_WEIGHT = 2.0, 5, 0.1


def floor_vs_plain(name, steps=ATTACK_STEPS):
    """Passes a method cannot avoid, in units of the plain step (one forward and backward).

    An inner attack step is one forward-backward pass in the input, as dear as the plain
    step's pass in the weights (the optimizer update is small beside it). PGD-AT: k + 1.
    TRADES: the clean logits (a forward pass, ~1/3), k steps, and the training pass on
    clean and adversarial images together (2 plain steps): k + 2.33. Fast FGSM: 2.
    GradAlign adds the input gradients at x and x + eta and their second-order term, about
    three double-backward passes of the plain step's cost: + 3.
    """
    return {
        "pgd_at": steps + 1.0,
        "trades": steps + 2.0 + 1.0 / 3.0,
        "fast_fgsm": 2.0,
        "fast_fgsm+gradalign": 5.0,
    }.get(name)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--widths",
        default=",".join(map(str, DEFAULT_WIDTHS)),
        help="5 comma-separated conv widths (default: full width)",
    )
    parser.add_argument("--size", type=int, default=64, help="patch side (default 64)")
    parser.add_argument("--batch-size", type=int, default=64, help="m (default 64)")
    parser.add_argument("--fusion-count", type=int, default=32, help="k (default 32)")
    parser.add_argument("--penalty-weight", type=float, default=0.1, help="lambda (default 0.1)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after tracing")
    parser.add_argument(
        "--dtype", default="float32", help="dtype policy: float32, mixed_float16, mixed_bfloat16"
    )
    parser.add_argument(
        "--json", default="runs/bench_train_step.json", help="output JSON path (runs/ is ignored)"
    )
    return parser.parse_args(argv)


def step_variant(name, penalty_weight=0.1, fusion_count=32, dtype="float32", jit_compile=False,
                 attack_steps=ATTACK_STEPS):
    """The settings of one named step (see the module doc) for `measure`; `attack_steps` is k
    of the pgd_at and trades variants."""
    if name in DEFENCE_STEP_NAMES:
        method = name.split("+")[0]
        defence = {"method": method, "attack_eps": ATTACK_EPS, "attack_steps": attack_steps}
        if name.endswith("+gradalign"):
            defence["grad_align_weight"] = GRAD_ALIGN_WEIGHT
        return {"penalty_weight": 0.0, "fusion_count": 0, "dtype": dtype,
                "jit_compile": jit_compile, "defence": defence,
                "floor_vs_plain": floor_vs_plain(name, attack_steps)}
    lam, k = {
        "keras": (None, 0),
        "plain": (0.0, 0),
        "fusion": (0.0, fusion_count),
        "penalty": (penalty_weight, 0),
        "penalty+fusion": (penalty_weight, fusion_count),
    }[name]
    return {"penalty_weight": lam, "fusion_count": k, "dtype": dtype, "jit_compile": jit_compile}


def make_step(size, widths, penalty_weight, fusion_count, dtype="float32", jit_compile=False,
              defence=None):
    """A traced-on-first-call train step; `penalty_weight=None` is Keras' own train_step;
    `defence`: SecureForensicModel arguments of another method (pgd_at, trades, fast_fgsm)."""
    keras.utils.set_random_seed(0)  # same initial weights for every variant
    detector = build_detector(size, widths, dtype=dtype)
    if penalty_weight is None:  # Keras' own train_step, for reference
        detector.compile(
            optimizer=keras.optimizers.Adam(1e-4),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
        detector.optimizer.build(detector.trainable_variables)
        return tf.function(detector.train_step, jit_compile=jit_compile)
    model = SecureForensicModel(
        detector, penalty_weight=penalty_weight, fusion_count=fusion_count, seed=0,
        **(defence or {}),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit_compile)
    model.optimizer.build(model.trainable_variables)
    return tf.function(model.train_step, jit_compile=jit_compile)


def host_info():
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "devices": [d.device_type for d in tf.config.list_logical_devices()],
    }


def measure(
    variants,
    *,
    widths=DEFAULT_WIDTHS,
    size=64,
    batch_size=64,
    steps=3,
    rounds=5,
    warmup=2,
    baseline="plain",
):
    """Time train steps side by side, in interleaved rounds, on one random batch.

    Args:
        variants: `{name: step_variant(...)}`, in the order they take their turns.
        widths, size, batch_size: the model and batch, the same for every variant.
        steps: timed steps per round; rounds: interleaved rounds; warmup: untimed steps.
        baseline: the variant the costs are relative to.

    Returns:
        `{name: {"wall_seconds_per_step", "images_per_s", "wall_cost_vs_<baseline>",
        "cpu_seconds_per_step", "cpu_cost_vs_<baseline>", "wall_rounds_s", "cpu_rounds_s",
        **the variant's settings}}`; `images_per_s` is `batch_size` over the fastest round's
        wall time per step, and the wall cost is the baseline's images/s over the variant's.
    """
    widths = tuple(widths)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (batch_size, size, size, 3)), tf.float32)
    y = tf.constant(np.arange(batch_size) % 2, tf.int32)
    step_fns = {}
    for name, v in variants.items():
        step_fns[name] = make_step(
            size, widths, v["penalty_weight"], v["fusion_count"], v["dtype"], v["jit_compile"],
            v.get("defence"),
        )
        for _ in range(1 + warmup):  # trace, then warm up
            logs = step_fns[name]((x, y))
        float(logs["loss"])

    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for _ in range(rounds):
        for name, step in step_fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                logs = step((x, y))
            float(logs["loss"])  # wait for the last step
            wall[name].append((time.perf_counter() - start) / steps)
            cpu[name].append((time.process_time() - start_cpu) / steps)

    wall_s = {name: min(times) for name, times in wall.items()}
    cpu_s = {name: statistics.median(times) for name, times in cpu.items()}
    return {
        name: {
            "wall_seconds_per_step": wall_s[name],
            "images_per_s": batch_size / wall_s[name],
            f"wall_cost_vs_{baseline}": wall_s[name] / wall_s[baseline],
            "cpu_seconds_per_step": cpu_s[name],
            f"cpu_cost_vs_{baseline}": cpu_s[name] / cpu_s[baseline],
            "wall_rounds_s": wall[name],
            "cpu_rounds_s": cpu[name],
            **variants[name],
        }
        for name in variants
    }


def main(argv=None):
    args = parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    variants = {
        name: step_variant(name, args.penalty_weight, args.fusion_count, args.dtype)
        for name in STEP_NAMES + DEFENCE_STEP_NAMES
    }
    results = measure(
        variants, widths=widths, size=args.size, batch_size=args.batch_size,
        steps=args.steps, rounds=args.rounds, warmup=args.warmup,
    )
    report = {
        "schema_version": SCHEMA_VERSION,
        "config": {**vars(args), "widths": list(widths), "jit_compile": False},
        "host": host_info(),
        "results": results,
    }
    jsonio.write_json(args.json, report)

    print(
        f"\n{args.size}x{args.size}, batch {args.batch_size}, widths {list(widths)}, "
        f"k = {args.fusion_count}, lambda = {args.penalty_weight}, {args.dtype}, "
        f"{args.rounds} interleaved rounds x {args.steps} steps\n"
    )
    print("| step | images/s (best wall) | cost vs plain, wall | CPU s/step | cost vs plain, CPU |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['images_per_s']:.1f} | {r['wall_cost_vs_plain']:.2f}x "
            f"| {r['cpu_seconds_per_step']:.3f} | {r['cpu_cost_vs_plain']:.2f}x |"
        )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
