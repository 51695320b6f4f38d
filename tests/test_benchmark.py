"""scripts/benchmark.py: the JSON schema of a --quick run, and the targets and table of a report."""

import json
import math
import re
import subprocess
import sys

import pytest

from tests.script_loader import SCRIPTS, load_script

SCRIPT = SCRIPTS / "benchmark.py"
TINY = "4,4,4,4,4"
FIGURE = re.compile(r"(per_s|per_core|_ms|_ratio|^ratio|cost_vs_\w+|scaling|seconds_per_step)$")


benchmark = load_script("benchmark")


def _figures(tree, path=""):
    """(path, value) of every measured figure (by key name) below `tree`."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if isinstance(value, (dict, list)):
                yield from _figures(value, f"{path}/{key}")
            elif FIGURE.search(str(key)) and value is not None:
                yield f"{path}/{key}", value


def _floats(tree):
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list):
        for value in tree:
            yield from _floats(value)
    elif isinstance(tree, float):
        yield tree


def _approx(a, b):
    return a == pytest.approx(b, rel=1e-9)


# ------------------------------------------------------------------ the real --quick run


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    empty = tmp_path_factory.mktemp("no-data")  # no synthetic_64: the run builds its own
    argv = ["--quick", "--widths", TINY, "--output", str(out), "--data-dir", str(empty)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "benchmark.json").read_text())
    return report, (out / "benchmark.md").read_text(), proc.stdout, argv


@pytest.mark.slow  # the quick benchmark run takes ~95 s on 2 cores
def test_quick_run_has_every_section_with_settings(quick_run):
    report, _, stdout, argv = quick_run
    assert report["schema_version"] == benchmark.SCHEMA_VERSION
    assert report["quick"] is True
    assert report["command"] == "python scripts/benchmark.py " + " ".join(argv)
    machine = report["machine"]
    assert machine["device"] in ("CPU", "GPU")
    assert machine["cpu_cores"] >= 1 and machine["tensorflow"] and machine["keras"]
    assert set(report["sections"]) == set(benchmark.SECTIONS)
    for name, section in report["sections"].items():
        assert section["settings"], name
        if name != "gpu":
            assert section["status"] == "ok", (name, section.get("reason"))
    for name in ("train_step", "attacks", "serving", "gpu"):
        assert report["sections"][name]["settings"]["widths"] == [4] * 5
    assert report["sections"]["train_step"]["settings"]["rounds"] >= 1
    assert report["sections"]["attacks"]["settings"]["n"] >= 1
    for name in benchmark.SECTIONS:  # one progress line per section
        assert re.search(rf"^\[\d/6\] {name}: ", stdout, re.M), name


@pytest.mark.slow  # the quick benchmark run takes ~95 s on 2 cores
def test_quick_run_figures_are_positive_and_finite(quick_run):
    report = quick_run[0]
    assert all(math.isfinite(v) for v in _floats(report))
    figures = dict(_figures(report["sections"]))
    assert len(figures) > 20
    for path, value in figures.items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool), path
        assert math.isfinite(value) and value > 0, (path, value)


@pytest.mark.slow  # the quick benchmark run takes ~95 s on 2 cores
def test_quick_run_ratios_are_quotients_of_stored_rates(quick_run):
    sections = quick_run[0]["sections"]
    train = sections["train_step"]["results"]
    assert set(train) == {"plain", "penalty", "penalty+fusion", "plain xla", "pgd_at"}
    # k = 1 in a quick run: PGD-AT's floor is 2 plain steps.
    assert train["pgd_at"]["floor_vs_plain"] == 2.0
    assert train["plain xla"]["jit_compile"] and not train["plain"]["jit_compile"]
    plain = train["plain"]["images_per_s"]
    for r in train.values():
        assert _approx(r["wall_cost_vs_plain"], plain / r["images_per_s"])
        assert _approx(r["images_per_s"], 8 / r["wall_seconds_per_step"])

    pipe = sections["pipeline"]
    assert set(pipe["results"]) == {"decode", "cached"}
    link = pipe["vs_training"]
    assert link["status"] == "ok" and _approx(link["training_images_per_s"], plain)
    cores = pipe["settings"]["cores"]
    for name, r in pipe["results"].items():
        assert _approx(link[f"{name}_ratio"], r["images_per_s"] / plain)
        assert _approx(r["images_per_s_per_core"], r["images_per_s"] / cores)
        assert _approx(r["images_per_s"], r["images_per_pass"] / r["wall_s"])

    attacks = sections["attacks"]
    for name in ("fgsm", "pgd", "apgd", "square"):
        r = attacks["results"][name]
        if attacks["art_unavailable"]:
            assert r["art_images_per_s"] is None and r["ratio"] is None
        else:
            assert _approx(r["ratio"], r["ours_images_per_s"] / r["art_images_per_s"])

    gen = sections["generation"]
    assert _approx(
        gen["scaling"], gen["results"]["2"]["patches_per_s"] / gen["results"]["1"]["patches_per_s"]
    )
    serving = sections["serving"]["results"]
    assert serving["p99_ms"] >= serving["p50_ms"] and serving["tiles"] == 64


@pytest.mark.slow  # the quick benchmark run takes ~95 s on 2 cores
def test_quick_run_apgd_and_square_report_fooled_counts_and_a_sane_square(quick_run):
    attacks = quick_run[0]["sections"]["attacks"]
    cfg, results = attacks["settings"], attacks["results"]
    assert results["square"]["eps"] == cfg["square_eps"] and results["apgd"]["eps"] == cfg["eps"]
    expected = {"apgd", "square"} | (set() if attacks["art_unavailable"]
                                     else {"apgd_art", "square_art"})
    assert set(results["fooled"]) == expected
    assert all(0 <= count <= cfg["n"] for count in results["fooled"].values())
    sanity = results["square_sanity"]
    assert sanity["n"] == min(cfg["sanity_n"], cfg["n"]) and sanity["eps"] == cfg["eps"]
    assert 0 <= sanity["ours_fooled"] <= sanity["n"]
    assert 0 < sanity["ours_max_abs_delta"] <= cfg["eps"]  # it moved, inside the ball
    if not attacks["art_unavailable"]:
        assert 0 < sanity["art_max_abs_delta"] <= cfg["eps"] + 1e-3


@pytest.mark.slow  # the quick benchmark run takes ~95 s on 2 cores
def test_quick_run_gpu_skipped_on_cpu_and_targets_flagged(quick_run):
    report, markdown, _, _ = quick_run
    on_cpu = report["machine"]["device"] == "CPU"
    if on_cpu:
        assert report["sections"]["gpu"] == {
            **report["sections"]["gpu"], "status": "skipped", "reason": "no GPU"
        }
    ids = {t["id"] for t in report["targets"]}
    assert ids == {
        "secure_step_cost", "tf_data_decode_per_core", "tf_data_cached_per_core",
        "attack_fgsm_vs_art", "attack_pgd_vs_art", "attack_apgd_vs_art",
        "attack_square_vs_art", "classify_images_p50",
        "generation_scaling", "mixed_precision_plain", "mixed_precision_penalty+fusion",
        "pgd_at_step_vs_floor", "trades_step_vs_floor", "fast_fgsm_step_vs_floor",
        "fast_fgsm+gradalign_step_vs_floor",
    }
    for t in report["targets"]:
        assert t["at_target_settings"] is False, t["id"]  # --quick, tiny widths
        if t.get("skipped"):
            assert t["pass"] is None and t["value"] is None
        else:
            assert isinstance(t["pass"], bool), t["id"]
            ok = t["value"] <= t["threshold"] if t["op"] == "<=" else t["value"] >= t["threshold"]
            assert t["pass"] == ok, t["id"]
    by_id = {t["id"]: t for t in report["targets"]}
    cost = report["sections"]["train_step"]["results"]["penalty+fusion"]["wall_cost_vs_plain"]
    assert by_id["secure_step_cost"]["value"] == cost
    if on_cpu:
        assert by_id["mixed_precision_plain"]["skipped"] == "no GPU"
        assert by_id["attack_fgsm_vs_art"]["threshold"] == 1.5
    assert "`python scripts/benchmark.py --quick" in markdown
    assert report["machine"]["cpu_model"] in markdown
    assert markdown.count("\n| ") == 1 + len(benchmark.TABLE_ROWS)  # header + rows


# ------------------------------------------------------------------ targets and table, fast


def _synthetic_report(device="CPU", cost=2.72):
    settings = benchmark.section_settings(quick=False)
    gpu_section = {"status": "skipped", "reason": "no GPU", "settings": settings["gpu"]}
    if device == "GPU":
        results = {}
        for step in ("plain", "penalty+fusion"):
            for dtype, base in (("float32", 1000.0), ("mixed_float16", 2000.0)):
                for jit, factor in ((False, 1.0), (True, 1.25)):
                    results[benchmark.gpu_variant_name(step, dtype, jit)] = {
                        "images_per_s": base * factor
                    }
        ratios = {step: {"mixed_float16_vs_float32": 2.0, "mixed_float16_vs_float32_xla": 2.0,
                         "xla_vs_no_xla_float32": 1.25, "xla_vs_no_xla_mixed_float16": 1.25}
                  for step in ("plain", "penalty+fusion")}
        gpu_section = {"status": "ok", "settings": settings["gpu"], "results": results,
                       "ratios": ratios}
    sections = {
        "train_step": {
            "status": "ok", "settings": settings["train_step"],
            "results": {
                "plain": {"images_per_s": 307.6, "wall_cost_vs_plain": 1.0},
                "penalty": {"images_per_s": 132.0, "wall_cost_vs_plain": 2.33},
                "penalty+fusion": {"images_per_s": 307.6 / cost, "wall_cost_vs_plain": cost},
            },
        },
        "pipeline": {
            "status": "ok", "settings": settings["pipeline"],
            "data": {"data_dir": "/d", "source": "existing", "count_per_class": 3000},
            "results": {
                "decode": {"images_per_pass": 4800, "images_per_s": 9412.0,
                           "images_per_s_per_core": 4706.0},
                "cached": {"images_per_pass": 4800, "images_per_s": 119332.0,
                           "images_per_s_per_core": 59666.0},
            },
            "vs_training": {"status": "ok", "training_images_per_s": 307.6,
                            "training_settings": {"batch_size": 64},
                            "decode_ratio": 30.6, "cached_ratio": 388.0},
        },
        "attacks": {
            "status": "ok", "settings": settings["attacks"], "art_unavailable": None,
            "results": {
                "fgsm": {"ours_images_per_s": 456.7, "art_images_per_s": 244.9, "ratio": 1.86},
                "pgd": {"ours_images_per_s": 51.3, "art_images_per_s": 22.9, "ratio": 2.24},
                "apgd": {"ours_images_per_s": 30.0, "art_images_per_s": 8.0, "ratio": 3.75,
                         "eps": 5.0},
                "square": {"ours_images_per_s": 12.0, "art_images_per_s": 6.0, "ratio": 2.0,
                           "eps": 1.0},
            },
        },
        "serving": {"status": "ok", "settings": settings["serving"],
                    "results": {"tiles": 64, "p50_ms": 71.0, "p99_ms": 105.0,
                                "images_per_s": 16.6}},
        "generation": {"status": "error", "settings": settings["generation"],
                       "reason": "RuntimeError: boom | pipe"},
        "gpu": gpu_section,
    }
    report = {
        "command": "python scripts/benchmark.py --rounds 5", "started_utc": "2026-11-23 21:00 UTC",
        "seconds": 420.0, "quick": False, "load_average_start": 0.1, "load_average_end": 0.5,
        "machine": {"device": device, "gpus": ["NVIDIA H100"] if device == "GPU" else [],
                    "cpu_model": "Test CPU 9000", "machine": "x86_64", "cpu_cores": 2,
                    "cpu_count": 2, "tensorflow": "2.21.0", "keras": "3.15.1",
                    "python": "3.11.7", "art": "1.20.1", "git_commit": "abc1234"},
        "sections": sections,
    }
    report["targets"] = benchmark.evaluate_targets(report)
    return report


def test_targets_of_a_synthetic_cpu_report():
    targets = {t["id"]: t for t in _synthetic_report()["targets"]}
    assert targets["secure_step_cost"]["pass"] is True
    assert targets["secure_step_cost"]["meets_aim"] is False
    assert targets["secure_step_cost"]["at_target_settings"] is True
    assert targets["tf_data_decode_per_core"]["pass"] is False
    assert targets["tf_data_cached_per_core"]["pass"] is True
    assert targets["attack_fgsm_vs_art"]["pass"] is True
    assert "aim" not in targets["attack_fgsm_vs_art"]
    assert targets["attack_apgd_vs_art"] == {**targets["attack_apgd_vs_art"], "pass": True,
                                             "threshold": 1.5, "aim": 3.0, "meets_aim": True}
    # 2x: over the 1.5x floor, under the 3x aim
    assert targets["attack_square_vs_art"] == {**targets["attack_square_vs_art"], "pass": True,
                                               "value": 2.0, "meets_aim": False}
    assert targets["classify_images_p50"]["pass"] is True
    assert targets["generation_scaling"]["pass"] is None  # the section failed
    assert targets["generation_scaling"]["skipped"].startswith("RuntimeError")
    assert targets["mixed_precision_plain"] == {
        **targets["mixed_precision_plain"], "pass": None, "skipped": "no GPU"
    }
    assert _synthetic_report(cost=3.1)["targets"][0]["pass"] is False


def test_targets_of_a_synthetic_gpu_report():
    targets = {t["id"]: t for t in _synthetic_report("GPU")["targets"]}
    assert targets["attack_fgsm_vs_art"]["threshold"] == 3.0
    assert targets["attack_fgsm_vs_art"]["pass"] is False  # 1.86x < 3x on a GPU
    assert targets["classify_images_p50"]["pass"] is None  # stated for CPU
    assert targets["mixed_precision_plain"]["pass"] is True
    assert targets["mixed_precision_plain"]["at_target_settings"] is True


def test_markdown_of_a_synthetic_report():
    md = benchmark.format_markdown(_synthetic_report())
    assert "Machine: CPU; Test CPU 9000 (x86_64), 2 cores" in md
    assert "TensorFlow 2.21.0, Keras 3.15.1" in md
    assert "`python scripts/benchmark.py --rounds 5`" in md and "commit abc1234" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(benchmark.TABLE_ROWS)  # header + one row per section
    assert all(row.count(" | ") == 4 for row in rows)  # 5 cells, no stray pipes
    assert "penalty+fusion 113.1 (**2.72×** plain's time)" in md
    assert "decode 9,412 images/s = **4,706 /s per core**" in md
    assert "decode: **no**; cached: yes" in md
    assert "FGSM 456.7 vs 244.9 images/s (**1.86×**)" in md
    assert "APGD-20 30.0 vs 8.0 images/s (**3.75×**)" in md
    assert "Square-100 12.0 vs 6.0 images/s (**2.00×**)" in md
    assert "APGD: yes (aim 3×: yes); Square: yes (aim 3×: no)" in md
    assert "p50 **71 ms**" in md
    assert "RuntimeError: boom / pipe" in md
    assert "skipped: no GPU" in md
    assert "Quick run" not in md
    gpu_md = benchmark.format_markdown(_synthetic_report("GPU"))
    assert "Machine: GPU (NVIDIA H100)" in gpu_md
    assert "plain: float32 1,000 images/s; mixed_float16 **2.00×**" in gpu_md


def test_a_report_from_before_apgd_and_square_skips_their_targets():
    report = _synthetic_report()
    for name in ("apgd", "square"):
        del report["sections"]["attacks"]["results"][name]
    targets = {t["id"]: t for t in benchmark.evaluate_targets(report)}
    assert targets["attack_pgd_vs_art"]["pass"] is True
    for name in ("apgd", "square"):
        t = targets[f"attack_{name}_vs_art"]
        assert t["pass"] is None and t["meets_aim"] is None and name in t["skipped"]
    report["targets"] = list(targets.values())
    assert "PGD-10 51.3 vs 22.9" in benchmark.format_markdown(report)


def test_only_rejects_unknown_sections():
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--only", "train_step,nonsense"])
    args = benchmark.parse_args(["--only", "serving, gpu", "--widths", TINY])
    assert args.only == ["serving", "gpu"] and args.widths == [4] * 5
