"""The benchmark suite: every figure of issue 6 in one run → benchmark.json and benchmark.md.

Run on any machine; it says what it ran on (CPU or GPU, model, cores, versions):

    python scripts/benchmark.py                     # full sizes, writes benchmark/
    python scripts/benchmark.py --quick             # smoke test, tiny sizes (< 2 min, 2 cores)
    python scripts/benchmark.py --only train_step,attacks --rounds 3

Sections (the measuring code is the `measure()` of each `scripts/bench_*.py`):

* `train_step`: plain, penalty and penalty+fusion steps, images/s and cost vs plain,
  in interleaved rounds (bench_train_step.py);
* `pipeline`: tf.data images/s (per core) at 64×64, raw decode and cached, passes taken
  in turns (bench_pipeline.py), and their ratio to the plain step's training images/s;
* `attacks`: FGSM, PGD-10, APGD-20 and Square-100, ours vs ART on the same model, taking
  turns (bench_attacks.py);
* `serving`: `classify_images` p50/p99 latency for one 512×512 JPEG, batch throughput
  (bench_serving.py);
* `generation`: simulated patches/s with 1 and 2 workers (bench_generation.py);
* `gpu`: on a GPU only, mixed_float16 vs float32 and XLA on vs off, full width at 128×128,
  all combinations in interleaved rounds (bench_train_step.py); skipped ("no GPU") on CPU.

Every ratio is a quotient of figures measured in this one process and stored beside it;
each target of the issue gets a pass flag, and `at_target_settings` says whether the run
used the settings the target is stated for (a `--quick` run does not). Absolute figures on
shared machines mean little: read the ratios, and the load averages in the JSON.

benchmark.json (schema_version 1): `command`, `started_utc`, `seconds`, `quick`,
`load_average_start`/`_end`, `machine` (device CPU|GPU, gpus, cpu_model, cpu_cores,
tensorflow, keras, art, git_commit, ...), `sections` (one per name in SECTIONS, each with
`status` ok|skipped|not_run|error, `reason` unless ok, `settings`, `seconds`, and when ok
its `results`; `pipeline` also has `vs_training`, `generation` `scaling`, `gpu` `ratios`),
and `targets` (id, description, value, op, threshold, unit, at_target_settings, and `pass`:
true/false, or null with `skipped` giving the reason). The exit status is 1 when a section
failed (the others are still measured and written), else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Only the standard library at module level: the generation section's `spawn` workers
# re-run this module as `__mp_main__`, and must not each import TensorFlow for it.
# TensorFlow, tfrecap and the scripts/bench/bench_*.py modules are imported where used.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))

SCHEMA_VERSION = 1
SECTIONS = ("train_step", "pipeline", "attacks", "serving", "generation", "gpu")
QUICK_WIDTHS = (8, 8, 16, 16, 32)
PIPELINE_DATASET = "synthetic_64"
DEFAULT_DATA_DIR = os.environ.get(
    "TFRECAP_DATA_DIR", str(Path("~/tensorflow_datasets").expanduser())
)


# --------------------------------------------------------------------------- settings


def _full_widths() -> list[int]:
    from tfrecap.models import DEFAULT_WIDTHS

    return list(DEFAULT_WIDTHS)


def section_settings(quick: bool, widths=None, rounds: int | None = None) -> dict:
    """The settings of every section: full sizes, or tiny ones for `quick`.

    `widths` replaces the model widths of every section; `rounds` the rounds (passes,
    repeats) of every section.
    """
    w = list(widths or (QUICK_WIDTHS if quick else _full_widths()))

    def pick(full, small):
        return small if quick else full

    def n_rounds(full, small):
        return rounds or pick(full, small)

    batch = pick(64, 8)
    return {
        "train_step": {
            "widths": w, "size": 64, "batch_size": batch, "fusion_count": pick(32, 4),
            "penalty_weight": 0.1, "dtype": "float32", "jit_compile": False,
            "steps": pick(3, 1), "rounds": n_rounds(5, 2), "warmup": pick(2, 1),
            # " xla" variants: the same step with jit_compile=True, to show what XLA does on
            # this machine (tfrecap's default turns it off on CPU and on on a GPU).
            "variants": ["plain", "penalty", "penalty+fusion", "plain xla"]
            + pick(["penalty+fusion xla", "pgd_at", "trades", "fast_fgsm",
                    "fast_fgsm+gradalign"], ["pgd_at"]),
            # k of pgd_at and trades: the demo pipelines' 5 (1 in a quick run, which traces faster).
            "attack_steps": pick(5, 1),
        },
        "pipeline": {
            "dataset": PIPELINE_DATASET, "split": "train", "batch_size": batch,
            "passes": n_rounds(5, 2), "epochs_per_pass": pick(4, 1),
            "cores": len(os.sched_getaffinity(0)),
            "variants": ["decode", "cached"], "build_count_per_class": pick(1000, 40),
        },
        "attacks": {
            "widths": w, "size": 64, "n": pick(256, 16), "batch_size": batch, "eps": 5.0,
            "steps": 10, "repeats": n_rounds(2, 1), "apgd_steps": pick(20, 2),
            "square_queries": pick(100, 5), "square_eps": 1.0, "sanity_n": pick(64, 4),
        },
        "serving": {
            "widths": w, "patch": 64, "side": 512, "calls": pick(30, 5), "batch": pick(64, 4),
        },
        "generation": {
            "size": 64, "count_per_class": pick(500, 40), "seed": 0, "workers": [1, 2],
            "rounds": n_rounds(2, 1),
        },
        "gpu": {
            "widths": w, "size": 128, "batch_size": batch, "fusion_count": pick(32, 4),
            "penalty_weight": 0.1, "steps": pick(3, 1), "rounds": n_rounds(5, 1),
            "warmup": pick(2, 1), "step_variants": ["plain", "penalty+fusion"],
            "dtypes": ["float32", "mixed_float16"], "jit_compile": [False, True],
        },
    }


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    """The checkout's commit, with "+dirty" when tracked files differ from it."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here,
                             capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return (commit + ("+dirty" if dirty.stdout.strip() else "")) or None


def machine_info() -> dict:
    import bench_attacks
    import keras
    import numpy as np
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name"))
        except (ValueError, RuntimeError):
            names.append(gpu.name)
    reason = bench_attacks.art_unavailable_reason()
    art_version = None
    if reason is None:
        import art

        art_version = art.__version__
    return {
        "device": "GPU" if gpus else "CPU",
        "gpus": names,
        "cpu_model": _cpu_model(),
        "cpu_cores": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "art": art_version,
        "git_commit": _git_commit(),
    }


# --------------------------------------------------------------------------- sections


def run_train_step(s: dict, **_) -> dict:
    import bench_train_step

    variants = {
        name: bench_train_step.step_variant(
            name.removesuffix(" xla"), s["penalty_weight"], s["fusion_count"], s["dtype"],
            s["jit_compile"] or name.endswith(" xla"), s.get("attack_steps", 5),
        )
        for name in s["variants"]
    }
    results = bench_train_step.measure(
        variants, widths=s["widths"], size=s["size"], batch_size=s["batch_size"],
        steps=s["steps"], rounds=s["rounds"], warmup=s["warmup"],
    )
    return {"results": results}


def _pipeline_data(data_dir, s: dict, stack) -> dict:
    """Where the synthetic_64 split is: `data_dir`, or a small one built in a temp dir."""
    from tfrecap.data import builder, catalog, generate

    if data_dir is not None:
        try:
            catalog.load_builder(data_dir, s["dataset"])
            identity = (catalog.read_metadata(data_dir, s["dataset"]) or {}).get("identity", {})
            return {"data_dir": str(data_dir), "source": "existing",
                    "count_per_class": identity.get("count_per_class")}
        except catalog.DatasetNotFoundError:
            pass
    root = stack.enter_context(tempfile.TemporaryDirectory(prefix="tfrecap-bench-"))
    count = s["build_count_per_class"]
    catalog.build_dataset(
        builder.synthetic_config(64, count, 0), root, workers=min(2, s["cores"])
    )
    generate.shutdown_workers()  # so the generation section starts its own pools
    return {"data_dir": root, "source": "built in a temporary dir", "count_per_class": count}


def run_pipeline(s: dict, data_dir=None, **_) -> dict:
    import bench_pipeline

    with contextlib.ExitStack() as stack:
        data = _pipeline_data(data_dir, s, stack)
        report = bench_pipeline.measure(
            data["data_dir"], s["dataset"], s["split"], s["batch_size"], s["passes"],
            s["cores"], tuple(s["variants"]), s["epochs_per_pass"],
        )
    return {"data": data, "load_average": report["load_average"], "results": report["results"]}


def run_attacks(s: dict, **_) -> dict:
    import bench_attacks

    report = bench_attacks.measure(
        s["n"], s["batch_size"], s["size"], s["widths"], s["eps"], s["steps"], s["repeats"],
        s["apgd_steps"], s["square_queries"], s["square_eps"], s["sanity_n"],
    )
    keep = ("art_version", "art_unavailable", "step_size", "results", "accuracy_after_attack",
            "clean_accuracy")
    return {k: report[k] for k in keep}


def run_serving(s: dict, **_) -> dict:
    import bench_serving

    report = bench_serving.measure(s["widths"], s["patch"], s["side"], s["calls"], s["batch"])
    return {"results": {k: report[k] for k in ("tiles", "p50_ms", "p99_ms", "images_per_s")}}


def run_generation(s: dict, **_) -> dict:
    import bench_generation

    report = bench_generation.measure(
        s["size"], s["count_per_class"], s["seed"], tuple(s["workers"]), s["rounds"]
    )
    return {"results": report["results"], "scaling": report["scaling"]}


def gpu_variant_name(step: str, dtype: str, jit: bool) -> str:
    return f"{step} {dtype}{' xla' if jit else ''}"


def run_gpu(s: dict, gpu_on_cpu=False, **_) -> dict:
    import bench_train_step
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU") and not gpu_on_cpu:
        return {"status": "skipped", "reason": "no GPU"}
    variants = {
        gpu_variant_name(step, dtype, jit): bench_train_step.step_variant(
            step, s["penalty_weight"], s["fusion_count"], dtype, jit
        )
        for step in s["step_variants"]
        for dtype in s["dtypes"]
        for jit in s["jit_compile"]
    }
    baseline = next(iter(variants))
    results = bench_train_step.measure(
        variants, widths=s["widths"], size=s["size"], batch_size=s["batch_size"],
        steps=s["steps"], rounds=s["rounds"], warmup=s["warmup"], baseline=baseline,
    )
    ips = {name: r["images_per_s"] for name, r in results.items()}
    ratios = {}
    for step in s["step_variants"]:
        def rate(dtype, jit, step=step):
            return ips[gpu_variant_name(step, dtype, jit)]

        ratios[step] = {
            "mixed_float16_vs_float32": rate("mixed_float16", False) / rate("float32", False),
            "mixed_float16_vs_float32_xla": rate("mixed_float16", True) / rate("float32", True),
            "xla_vs_no_xla_float32": rate("float32", True) / rate("float32", False),
            "xla_vs_no_xla_mixed_float16": (
                rate("mixed_float16", True) / rate("mixed_float16", False)
            ),
        }
    return {"results": results, "ratios": ratios}


RUNNERS = {
    "train_step": run_train_step,
    "pipeline": run_pipeline,
    "attacks": run_attacks,
    "serving": run_serving,
    "generation": run_generation,
    "gpu": run_gpu,
}


def link_pipeline_to_training(sections: dict) -> None:
    """The tf.data rates over the plain step's training images/s, both measured in this run."""
    pipe, train = sections.get("pipeline", {}), sections.get("train_step", {})
    if pipe.get("status") != "ok":
        return
    if train.get("status") != "ok" or "plain" not in train.get("results", {}):
        pipe["vs_training"] = {"status": "skipped",
                               "reason": "the train_step section (plain step) did not run"}
        return
    training = train["results"]["plain"]["images_per_s"]
    pipe["vs_training"] = {
        "status": "ok",
        "training_step": "plain",
        "training_images_per_s": training,
        "training_settings": {k: train["settings"][k] for k in ("widths", "size", "batch_size")},
        **{f"{name}_ratio": r["images_per_s"] / training for name, r in pipe["results"].items()},
    }


def _summary(name: str, section: dict) -> str:
    """One progress line's worth of a finished section."""
    if section["status"] != "ok":
        return f"{section['status']}: {section.get('reason', '')}"
    r = section.get("results", {})
    if name == "train_step":
        return "; ".join(f"{k} {v['images_per_s']:.1f} images/s" for k, v in r.items())
    if name == "pipeline":
        return "; ".join(f"{k} {v['images_per_s_per_core']:.0f} images/s per core"
                         for k, v in r.items())
    if name == "attacks":
        return "; ".join(f"{k} ours {r[k]['ours_images_per_s']:.1f} images/s, ratio "
                         f"{_fmt_x(r[k]['ratio'])}" for k in ATTACKS_VS_ART if k in r)
    if name == "serving":
        return f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms"
    if name == "generation":
        return f"scaling 2 vs 1 workers {section['scaling']:.2f}x"
    if name == "gpu":
        return "; ".join(f"{k} mixed/float32 {v['mixed_float16_vs_float32']:.2f}x"
                         for k, v in section["ratios"].items())
    return "ok"


def run_sections(names, settings: dict, *, data_dir=None, gpu_on_cpu=False) -> dict:
    """Runs the selected sections in order; the others are recorded as not run."""
    sections = {}
    selected = [n for n in SECTIONS if n in names]
    for i, name in enumerate(selected, 1):
        print(f"[{i}/{len(selected)}] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            out = RUNNERS[name](settings[name], data_dir=data_dir, gpu_on_cpu=gpu_on_cpu)
            section = {"status": "ok", **out}
        except Exception as err:  # one broken section must not lose the others
            traceback.print_exc()
            section = {"status": "error", "reason": f"{type(err).__name__}: {err}"}
        section["settings"] = settings[name]
        section["seconds"] = time.perf_counter() - start
        sections[name] = section
        print(f"[{i}/{len(selected)}] {name}: {_summary(name, section)} "
              f"({section['seconds']:.0f} s)", flush=True)
    for name in SECTIONS:
        sections.setdefault(name, {"status": "not_run", "reason": "not selected (--only)",
                                   "settings": settings[name]})
    link_pipeline_to_training(sections)
    return {name: sections[name] for name in SECTIONS}


# --------------------------------------------------------------------------- targets


def _target(tid, description, value, op, threshold, unit, at_settings, skipped=None, **extra):
    entry = {"id": tid, "description": description, "value": value, "op": op,
             "threshold": threshold, "unit": unit, "at_target_settings": bool(at_settings)}
    if skipped is None and value is None:
        skipped = "not measured"
    if skipped is not None:
        entry.update({"pass": None, "skipped": skipped, "value": None})
    else:
        entry["pass"] = bool(value <= threshold if op == "<=" else value >= threshold)
    entry.update(extra)
    return entry


def _not_ok(section: dict) -> str | None:
    if section["status"] == "ok":
        return None
    return section.get("reason") or section["status"]


def evaluate_targets(report: dict) -> list[dict]:
    """The issue's targets, each with its measured value and a pass flag (None when skipped).

    `at_target_settings` is True when the section ran at the settings the target is
    stated for (full width, 64×64 or 128×128, batch 64, full counts).
    """
    device = report["machine"]["device"]
    sections = report["sections"]
    full = _full_widths()
    targets = []

    s = sections["train_step"]
    cfg = s["settings"]
    value = skip = None
    if _not_ok(s):
        skip = _not_ok(s)
    elif "penalty+fusion" not in s["results"] or "plain" not in s["results"]:
        skip = "plain or penalty+fusion not among the variants"
    else:
        value = s["results"]["penalty+fusion"]["wall_cost_vs_plain"]
    targets.append(_target(
        "secure_step_cost", "penalty+fusion train step cost vs plain (wall time)", value, "<=",
        3.0, "x", cfg["widths"] == full and cfg["size"] == 64 and cfg["batch_size"] == 64,
        skip, aim=2.5, meets_aim=None if value is None else bool(value <= 2.5),
    ))
    # Issue 15: each defence's step against its floor estimate (bench_train_step.floor_vs_plain).
    for name in ("pgd_at", "trades", "fast_fgsm", "fast_fgsm+gradalign"):
        value, skip = None, _not_ok(s)
        if skip is None:
            if name in s["results"]:
                r = s["results"][name]
                value = r["wall_cost_vs_plain"] / r["floor_vs_plain"]
            else:
                skip = f"{name} not among the variants"
        targets.append(_target(
            f"{name}_step_vs_floor", f"{name} train step cost vs its floor (plain steps, wall)",
            value, "<=", 1.5, "x",
            cfg["widths"] == full and cfg["size"] == 64 and cfg["batch_size"] == 64, skip,
        ))

    s = sections["pipeline"]
    cfg = s["settings"]
    for variant in ("decode", "cached"):
        value, skip = None, _not_ok(s)
        if skip is None:
            if variant in s["results"]:
                value = s["results"][variant]["images_per_s_per_core"]
            else:
                skip = f"variant {variant!r} not run"
        targets.append(_target(
            f"tf_data_{variant}_per_core", f"tf.data images/s per core at 64x64 ({variant})",
            value, ">=", 5000.0, "images/s/core", cfg["batch_size"] == 64, skip,
        ))

    s = sections["attacks"]
    cfg = s["settings"]
    threshold = 3.0 if device == "GPU" else 1.5
    for attack, label in _attack_labels(cfg):
        value, skip = None, _not_ok(s)
        if skip is None:
            if attack in s["results"]:
                value = s["results"][attack]["ratio"]
                skip = s.get("art_unavailable")
            else:
                skip = f"{attack} not measured (a report from before it was added)"
        # APGD and Square: the floor is 1.5x on CPU and its aim 3x (item 8).
        aim = {} if attack in ("fgsm", "pgd") else {
            "aim": 3.0, "meets_aim": None if value is None or skip else bool(value >= 3.0)}
        targets.append(_target(
            f"attack_{attack}_vs_art", f"{label} images/s, ours vs ART, on {device}", value,
            ">=", threshold, "x", cfg["widths"] == full and cfg["size"] == 64, skip, **aim,
        ))

    s = sections["serving"]
    cfg = s["settings"]
    skip = _not_ok(s)
    if skip is None and device != "CPU":
        skip = "the target is stated for CPU serving"
    targets.append(_target(
        "classify_images_p50", "classify_images p50 latency, one 512x512 JPEG, on CPU",
        None if skip else s["results"]["p50_ms"], "<=", 200.0, "ms",
        cfg["widths"] == full and cfg["side"] == 512 and cfg["patch"] == 64, skip,
    ))

    s = sections["generation"]
    cfg = s["settings"]
    skip = _not_ok(s)
    targets.append(_target(
        "generation_scaling", "data generation patches/s, 2 workers vs 1",
        None if skip else s["scaling"], ">=", 1.7, "x", cfg["count_per_class"] >= 300, skip,
    ))

    s = sections["gpu"]
    cfg = s["settings"]
    for step in cfg["step_variants"]:
        skip = _not_ok(s)
        targets.append(_target(
            f"mixed_precision_{step}", f"mixed_float16 vs float32 images/s, {step} step, "
            "128x128, XLA off (GPU)",
            None if skip else s["ratios"][step]["mixed_float16_vs_float32"], ">=", 1.8, "x",
            cfg["widths"] == full and cfg["size"] == 128 and device == "GPU", skip,
        ))
    return targets


# --------------------------------------------------------------------------- markdown


def _fmt_x(value) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def _fmt_rate(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"


def _n(count: int, word: str) -> str:
    plural = word + ("es" if word.endswith("s") else "s")
    return f"{count} {word if count == 1 else plural}"


def _widths(widths) -> str:
    return "-".join(map(str, widths))


def _met(targets, ids, labels=None) -> str:
    parts = []
    for i, tid in enumerate(ids):
        t = next((t for t in targets if t["id"] == tid), None)
        if t is None:
            continue
        word = "—" if t["pass"] is None else ("yes" if t["pass"] else "**no**")
        if t["pass"] is not None and not t["at_target_settings"]:
            word += "\\*"
        if tid.startswith("attack_") and t.get("meets_aim") is not None:
            word += f" (aim {t['aim']:g}×: {'yes' if t['meets_aim'] else 'no'})"
        parts.append(f"{labels[i]}: {word}" if labels else word)
    return "; ".join(parts)


def _row_train_step(s, cfg):
    r = s["results"]
    settings = (f"{cfg['size']}×{cfg['size']}, batch {cfg['batch_size']}, widths "
                f"{_widths(cfg['widths'])}, k = {cfg['fusion_count']}, λ = "
                f"{cfg['penalty_weight']:g}, {cfg['dtype']}, XLA off unless named, "
                f"{_n(cfg['rounds'], 'interleaved round')} × {_n(cfg['steps'], 'step')}")
    parts = []
    for name, v in r.items():
        if name == "plain":
            parts.append(f"plain {_fmt_rate(v['images_per_s'])} images/s")
        elif name.endswith(" xla") and name.removesuffix(" xla") in r:
            off = r[name.removesuffix(" xla")]["images_per_s"]
            parts.append(f"{name} {_fmt_rate(v['images_per_s'])} "
                         f"(**{_fmt_x(v['images_per_s'] / off)}** the speed without XLA)")
        elif v.get("floor_vs_plain"):
            cost, floor = v["wall_cost_vs_plain"], v["floor_vs_plain"]
            parts.append(f"{name} {_fmt_rate(v['images_per_s'])} (**{_fmt_x(cost)}** plain's "
                         f"time; floor {_fmt_x(floor)}, **{_fmt_x(cost / floor)}** of it)")
        else:
            parts.append(f"{name} {_fmt_rate(v['images_per_s'])} "
                         f"(**{_fmt_x(v['wall_cost_vs_plain'])}** plain's time)")
    return settings, "; ".join(parts)


def _row_pipeline(s, cfg):
    data = s["data"]
    n = next(iter(s["results"].values()))["images_per_pass"]
    settings = (f"{cfg['dataset']}/{cfg['split']} ({n:,} images, {data['source']}), batch "
                f"{cfg['batch_size']}, {cfg['cores']} tf.data threads, median of "
                f"{_n(cfg['passes'], 'pass')} of {_n(cfg['epochs_per_pass'], 'epoch')}")
    link = s.get("vs_training", {})
    result = "; ".join(
        f"{name} {_fmt_rate(v['images_per_s'])} images/s = "
        f"**{_fmt_rate(v['images_per_s_per_core'])} /s per core**"
        for name, v in s["results"].items()
    )
    if link.get("status") == "ok":
        ratios = ", ".join(f"{name} {_fmt_x(link[f'{name}_ratio'])}" for name in s["results"])
        result += (f"; over the plain train step's {_fmt_rate(link['training_images_per_s'])} "
                   f"images/s: {ratios}")
    else:
        result += f"; vs training: {link.get('reason', 'n/a')}"
    return settings, result


ATTACKS_VS_ART = ("fgsm", "pgd", "apgd", "square")


def _attack_labels(cfg):
    """(result key, label) of each attack compared with ART, at the section's settings."""
    return (("fgsm", "FGSM"), ("pgd", f"PGD-{cfg['steps']}"),
            ("apgd", f"APGD-{cfg.get('apgd_steps', 20)}"),
            ("square", f"Square-{cfg.get('square_queries', 100)}"))


def _row_attacks(s, cfg):
    r = s["results"]
    settings = (f"{cfg['n']} images {cfg['size']}×{cfg['size']}, batch {cfg['batch_size']}, "
                f"widths {_widths(cfg['widths'])}, ε = {cfg['eps']:g}, best of "
                f"{cfg['repeats']} in turns")
    if "square" in r:
        settings += (f"; APGD at equal iterations (CE); Square at equal queries, timed at "
                     f"ε = {cfg['square_eps']:g}, too small to fool (`fooled` in the JSON)")
    parts = []
    for name, label in _attack_labels(cfg):
        if name not in r:
            continue
        v = r[name]
        parts.append(f"{label} {_fmt_rate(v['ours_images_per_s'])} vs "
                     f"{_fmt_rate(v['art_images_per_s'])} images/s (**{_fmt_x(v['ratio'])}**)")
    result = "; ".join(parts)
    if s.get("art_unavailable"):
        result += f" (ART: {s['art_unavailable']})"
    return settings, result


def _row_serving(s, cfg):
    r = s["results"]
    settings = (f"{cfg['side']}×{cfg['side']} JPEG = {r['tiles']} tiles of {cfg['patch']} px, "
                f"widths {_widths(cfg['widths'])}, reloaded SavedModel, {cfg['calls']} calls; "
                f"batch {cfg['batch']}")
    result = (f"p50 **{r['p50_ms']:.0f} ms**, p99 {r['p99_ms']:.0f} ms; batch of "
              f"{cfg['batch']}: {_fmt_rate(r['images_per_s'])} images/s")
    return settings, result


def _row_generation(s, cfg):
    r = s["results"]
    patches = next(iter(r.values()))["patches"]
    settings = (f"{cfg['size']} px, {cfg['count_per_class']} per class ({patches:,} patches), "
                f"best of {_n(cfg['rounds'], 'round')} in turns")
    result = "; ".join(f"{_fmt_rate(v['patches_per_s'])} patches/s on {_n(int(w), 'worker')}"
                       for w, v in r.items())
    return settings, f"{result}: **{_fmt_x(s['scaling'])}**"


def _row_gpu(s, cfg):
    settings = (f"{cfg['size']}×{cfg['size']}, batch {cfg['batch_size']}, widths "
                f"{_widths(cfg['widths'])}, {_n(cfg['rounds'], 'interleaved round')} × "
                f"{_n(cfg['steps'], 'step')}")
    parts = []
    for step, ratios in s["ratios"].items():
        f32 = s["results"][gpu_variant_name(step, "float32", False)]["images_per_s"]
        parts.append(
            f"{step}: float32 {_fmt_rate(f32)} images/s; mixed_float16 "
            f"**{_fmt_x(ratios['mixed_float16_vs_float32'])}** "
            f"({_fmt_x(ratios['mixed_float16_vs_float32_xla'])} with XLA); XLA "
            f"{_fmt_x(ratios['xla_vs_no_xla_float32'])} float32, "
            f"{_fmt_x(ratios['xla_vs_no_xla_mixed_float16'])} mixed_float16"
        )
    return settings, "; ".join(parts)


TABLE_ROWS = (
    # section, label, row formatter, target text, target ids, target labels
    ("train_step", "secure train step", _row_train_step,
     "penalty+fusion ≤ 3.0× plain (aim 2.5×)", ["secure_step_cost"], None),
    ("pipeline", "tf.data at 64×64", _row_pipeline, "≥ 5,000 images/s per core",
     ["tf_data_decode_per_core", "tf_data_cached_per_core"], ["decode", "cached"]),
    ("attacks", "attacks vs ART", _row_attacks,
     "≥ 1.5× ART on CPU, ≥ 3× on GPU (APGD, Square: aim 3× on CPU)",
     ["attack_fgsm_vs_art", "attack_pgd_vs_art", "attack_apgd_vs_art", "attack_square_vs_art"],
     ["FGSM", "PGD", "APGD", "Square"]),
    ("serving", "`classify_images`", _row_serving, "p50 ≤ 200 ms (CPU, full width)",
     ["classify_images_p50"], None),
    ("generation", "data generation", _row_generation, "≥ 1.7× from 1 to 2 workers",
     ["generation_scaling"], None),
    ("gpu", "GPU: mixed precision, XLA", _row_gpu, "mixed_float16 ≥ 1.8× float32 (128×128)",
     ["mixed_precision_plain", "mixed_precision_penalty+fusion"], ["plain", "penalty+fusion"]),
)


def machine_line(m: dict) -> str:
    device = f"GPU ({', '.join(map(str, m['gpus']))})" if m["device"] == "GPU" else "CPU"
    art = f", ART {m['art']}" if m.get("art") else ", ART not installed"
    return (f"{device}; {m['cpu_model']} ({m['machine']}), {m['cpu_cores']} cores available "
            f"of {m['cpu_count']}; TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
            f"Python {m['python']}{art}")


def format_markdown(report: dict) -> str:
    """The summary table (docs/benchmarks.md) of a report (pure: depends on `report` only)."""
    m = report["machine"]
    commit = f", commit {m['git_commit']}" if m.get("git_commit") else ""
    lines = [
        "## Benchmark",
        "",
        f"Machine: {machine_line(m)}.",
        "",
        f"Command: `{report['command']}` ({report['started_utc']}, {report['seconds']:.0f} s; "
        f"load average {report['load_average_start']:.1f} at start, "
        f"{report['load_average_end']:.1f} at end{commit}).",
        "",
    ]
    if report["quick"]:
        lines += ["Quick run: smoke-test sizes; its figures say nothing about the targets.", ""]
    lines += ["| what | settings | result | target | met |", "|---|---|---|---|---|"]
    targets = report["targets"]
    for name, label, row, target_text, ids, labels in TABLE_ROWS:
        s = report["sections"][name]
        cfg = s["settings"]
        if s["status"] == "ok":
            settings, result = row(s, cfg)
        elif s["status"] == "skipped":
            settings, result = f"skipped: {s['reason']}", "—"
        elif s["status"] == "not_run":
            settings, result = "not run (`--only`)", "—"
        else:
            settings, result = "error", s.get("reason", "").replace("|", "/")
        lines.append(f"| {label} | {settings} | {result} | {target_text} | "
                     f"{_met(targets, ids, labels)} |")
    lines += [
        "",
        "Ratios are measured side by side in this one run; absolute figures on shared machines "
        "mean little. Costs are wall time relative to the plain step. "
        "\\* met or missed, but not at the settings the target is stated for.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="benchmark",
                        help="folder for benchmark.json and benchmark.md (default benchmark/)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help=f"where {PIPELINE_DATASET} is built (env: TFRECAP_DATA_DIR); if it "
                        "is not there, a small one is built in a temporary dir")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and rounds: a smoke test, not a measurement")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds / passes / repeats of every section (default per section)")
    parser.add_argument("--widths", default=None,
                        help="5 comma-separated model widths for every section "
                        "(default full width 32,64,128,256,512; --quick: 8,8,16,16,32)")
    parser.add_argument("--gpu-on-cpu", action="store_true",
                        help="run the GPU section without a GPU too (slow; tests its code)")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown or not only:
        parser.error(f"--only takes sections among {', '.join(SECTIONS)}; got {args.only!r}")
    args.only = only
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.widths is not None:
        args.widths = [int(w) for w in args.widths.split(",")]
        if len(args.widths) != 5:
            parser.error("--widths takes 5 comma-separated widths")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    machine = machine_info()
    print(f"benchmark on {machine_line(machine)}", flush=True)
    settings = section_settings(args.quick, args.widths, args.rounds)
    sections = run_sections(args.only, settings, data_dir=args.data_dir,
                            gpu_on_cpu=args.gpu_on_cpu)
    report = {
        "schema_version": SCHEMA_VERSION,
        "command": shlex.join(["python", "scripts/benchmark.py", *argv]),
        "started_utc": started.strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - start,
        "quick": args.quick,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg()[0],
        "machine": machine,
        "sections": sections,
    }
    report["targets"] = evaluate_targets(report)
    markdown = format_markdown(report)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    from tfrecap import jsonio

    jsonio.write_json(out / "benchmark.json", report)
    (out / "benchmark.md").write_text(markdown)
    print("\n" + markdown)
    print(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.md'}")
    errors = [name for name, s in sections.items() if s["status"] == "error"]
    if errors:
        print(f"sections that failed: {', '.join(errors)}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
