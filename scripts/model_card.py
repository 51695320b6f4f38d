"""Measure a trained detector and write its model card (JSON + markdown) beside its export.

The card is the record a user reads before trusting a shipped detector: what it was trained on
and how to remake it, its accuracy on the synthetic test split, its whole-image verdicts on
real photos (when folders of them are given), and its accuracy under FGSM and PGD at
ε = 1..5. Every figure in ``MODEL_CARD.md`` is rendered from ``model_card.json`` by
:func:`render_card`, so the two cannot disagree (``tests/test_shipped_model.py`` checks it).

Run (the shipped default; the real photo folders are optional and never committed)::

    python scripts/model_card.py saved_models/default_64 --dataset synthetic_v2_64 \\
        --train-command "tfrecap data synth ... && tfrecap train --pipeline default_64" \\
        --real-originals DIR --real-recaptured DIR --real-name "the real dev photos"
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"
SCHEMA_VERSION = 1


# The robust model that a card names when its own model is not adversarially trained (issue
# 15, item 5: no zoo model has beaten the default on real photos, so none ships as the
# default). The best-measured defence of docs/defences.md, and how to train it.
ROBUST_ALTERNATIVE = {
    "pipeline": "demo_pgd_at",
    "method": ("PGD adversarial training (Madry et al. 2018) at ε = 2, with the zoo's 3 inner "
               "steps (the pipeline's own: 5)"),
    "command": ("tfrecap reproduce --profile zoo --dataset synthetic_64 --count 3000 "
                "--defences demo_baseline,demo_pgd_at --steps 3000"),
    "measured": ("on the demo data (synthetic_64, simulator v1), three training seeds (add "
                 "--seeds 3), 3,000 steps (its model: reproduction/zoo/saved_models/"
                 "demo_pgd_at): 90.0 % "
                 "[89.7–90.2] clean and 80.5 % [79.7–80.9] under auto at ε = 2, against the "
                 "undefended model's 97.8 % and 10.8 % (its checkpoints ranked by clean "
                 "accuracy; docs/defences.md). It holds by giving up faint recaptures: 7.8 "
                 "points of clean accuracy. On the real dev photos it is at chance (balanced "
                 "50.5 %). On synthetic_v2_64, this "
                 "card's kind of data, no defence keeps its clean accuracy at the zoo's CPU "
                 "budget, PGD-AT included."),
}


def robust_alternative(config: dict) -> dict | None:
    """:data:`ROBUST_ALTERNATIVE`, unless ``config`` (an export's) is adversarially trained."""
    from tfrecap.names import ADVERSARIAL_TRAINING_METHODS, resolve_defence_method

    d = config.get("defence", {})
    method = resolve_defence_method(d.get("method"), d.get("penalty_weight", 0.0),
                                    d.get("fusion_count", 0))
    return None if method in ADVERSARIAL_TRAINING_METHODS else ROBUST_ALTERNATIVE


def _robust_lines(alternative: dict | None) -> list[str]:
    if not alternative:
        return []
    return ["", "## Under attack: the robust model", "",
            "This detector is not adversarially trained; the table above shows how crafted "
            f"noise moves it. The robust model is `{alternative['pipeline']}`, "
            f"{alternative['method']}: `{alternative['command']}`. Measured "
            f"{alternative['measured']}"]


def _tfrecap(*args: str) -> None:
    command = [sys.executable, "-m", "tfrecap.cli.main", *args]
    print("+ tfrecap", " ".join(args), flush=True)
    subprocess.run(command, check=True)


def _read(path: Path) -> dict:
    from tfrecap.jsonio import loads_strict

    return loads_strict(path.read_text())


def _patch_figures(report: dict) -> dict:
    """Clean and per-attack accuracy from an ``evaluate --json`` report (schema 1)."""
    out = {
        "n": report["n"],
        "accuracy": report["clean"]["accuracy"],
        "ci": report["clean"]["ci"],
        "by_class": {k: v["accuracy"] for k, v in report["clean"]["by_class"].items()},
        "auc": report.get("auc"),
        "attacks": {},
    }
    for attack in report["attacks"]:
        name = attack["attack"]
        if attack.get("params", {}).get("loss"):
            name += "-" + attack["params"]["loss"]
        out["attacks"][name] = {
            "n": attack["results"][0]["n"] if attack["results"] else 0,
            "accuracy": {f"{r['eps']:g}": r["accuracy"] for r in attack["results"]},
        }
    return out


def _whole_image_figures(report: dict) -> dict:
    classes = report["classes"]
    return {
        "threshold": report["threshold"],
        "by_class": {k: {"n": v["n"], "correct": v["correct"], "accuracy": v["accuracy"],
                         "ci": v["ci"]} for k, v in classes.items()},
        "balanced_accuracy": report["balanced_accuracy"],
        "auc": report["auc"],
        "skipped": report["skipped"]["count"],
    }


def measure(model: Path, *, data_dir: str, dataset: str, real: dict | None, limit: int | None,
            pgd_limit: int) -> dict:
    """Run the evaluations and return the card's measured part."""
    measured = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        common = [str(model), "--data-dir", data_dir, "--dataset", dataset,
                  "--eps", "1,2,3,4,5", "--no-unbounded-check"]
        if limit:
            common += ["--limit", str(limit)]
        _tfrecap("evaluate", *common, "--attack", "fgsm", "--json", str(tmp / "fgsm.json"))
        pgd = [str(model), "--data-dir", data_dir, "--dataset", dataset, "--eps", "1,2,3,4,5",
               "--attack", "pgd", "--loss", "margin", "--limit", str(pgd_limit),
               "--no-unbounded-check",
               "--json", str(tmp / "pgd.json")]
        _tfrecap("evaluate", *pgd)
        synthetic = _patch_figures(_read(tmp / "fgsm.json"))
        synthetic["attacks"].update(_patch_figures(_read(tmp / "pgd.json"))["attacks"])
        measured["synthetic_test"] = synthetic
        if real:
            _tfrecap("evaluate", str(model), "--originals", real["originals"],
                     "--recaptured", real["recaptured"], "--json", str(tmp / "real.json"))
            measured["real_photos"] = {"name": real["name"],
                                      **_whole_image_figures(_read(tmp / "real.json"))}
    return measured


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _guard_lines(guard: dict | None) -> list[str]:
    """The training section's line on the robustness guard's checkpoint choice, if it ran."""
    if not guard:
        return []
    if guard.get("step") is None:
        return [f"- Checkpoint: the last (step {guard['exported_step']}): "
                f"{guard.get('warning', 'no guard record reached the clean floor')}."]
    return [f"- Checkpoint: step {guard['step']}, the best of {len(guard['history'])} guard "
            f"records on {guard['measured_patches']} validation patches (clean "
            f"{_pct(guard['clean'])}, PGD-margin at ε = {guard['eps']:g} {_pct(guard['pgd'])}, "
            f"clean floor {_pct(guard['clean_floor'])})."]


def render_card(card: dict) -> str:
    """The markdown model card, every figure taken from ``card`` (the JSON)."""
    m = card["measured"]
    syn = m["synthetic_test"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        card["summary"],
        "",
        "## Training",
        "",
        f"- Data: {card['training']['data']} (synthetic only; no real photo was used).",
        f"- Model: {card['training']['model']}.",
        f"- Reproduce: `{card['training']['command']}`",
        f"- Verdict: {card['verdict']['aggregation']} of the tile probabilities, recaptured "
        f"at or above {card['verdict']['threshold']:.4f} ({card['verdict_source']}).",
        *_guard_lines(card["training"].get("guard")),
        "",
        f"## Synthetic test split ({card['training']['dataset']}, n = {syn['n']})",
        "",
        f"Clean accuracy {_pct(syn['accuracy'])} (originals {_pct(syn['by_class']['original'])},"
        f" recaptures {_pct(syn['by_class']['recaptured'])}).",
        "",
        "| attack | n | " + " | ".join(f"ε = {e}" for e in "12345") + " |",
        "|---|---|" + "---|" * 5,
    ]
    for name, attack in syn["attacks"].items():
        cells = " | ".join(_pct(attack["accuracy"].get(e)) for e in "12345")
        lines.append(f"| {name} | {attack['n']} | {cells} |")
    lines += _robust_lines(card.get("robust_alternative"))
    real = m.get("real_photos")
    lines += ["", "## Real photos (whole-image verdicts)", ""]
    if real:
        by = real["by_class"]
        lines += [
            f"On {real['name']}: balanced accuracy {_pct(real['balanced_accuracy'])}, ROC AUC "
            f"{'n/a' if real['auc'] is None else format(real['auc'], '.3f')}, at the stored "
            f"threshold {real['threshold']:.4f}.",
            "",
            "| class | photos | correct | accuracy | 95 % CI |",
            "|---|---|---|---|---|",
        ]
        for cls, v in by.items():
            lines.append(f"| {cls} | {v['n']} | {v['correct']} | {_pct(v['accuracy'])} | "
                         f"[{_pct(v['ci'][0])}, {_pct(v['ci'][1])}] |")
    else:
        lines.append("Not measured.")
    lines += ["", "## Targets", ""]
    for target in card["targets"]:
        lines.append(f"- {target['what']}: {target['value']} → "
                     f"{'met' if target['met'] else '**not met**'}")
    lines += ["", "## Limits", ""] + [f"- {limit}" for limit in card["limits"]] + [""]
    return "\n".join(lines)


def targets(measured: dict) -> list[dict]:
    """The issue's targets, each judged on the measured figures."""
    out = []
    syn = measured["synthetic_test"]["accuracy"]
    out.append({"what": "synthetic test accuracy ≥ 95 %", "value": _pct(syn),
                "met": syn >= 0.95})
    real = measured.get("real_photos")
    if real:
        bal, auc = real["balanced_accuracy"], real["auc"]
        out.append({"what": "real dev photos: balanced accuracy ≥ 80 %", "value": _pct(bal),
                    "met": bal is not None and bal >= 0.80})
        out.append({"what": "real dev photos: ROC AUC ≥ 0.88",
                    "value": "n/a" if auc is None else f"{auc:.3f}",
                    "met": auc is not None and auc >= 0.88})
    return out


def _verdict_source(model: Path, config: dict) -> str:
    photos = config.get("verdict", {}).get("calibration_photos", 0)
    if not photos:
        return "the uncalibrated default"
    v = config["verdict"]
    return (f"chosen on {photos} synthetic validation photos per class, "
            f"{v['photo_height']}x{v['photo_width']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="saved_models/NAME (the card goes here)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--train-command", required=True)
    parser.add_argument("--summary", default="")
    parser.add_argument("--limit", type=int, default=None, help="synthetic test patches")
    parser.add_argument("--pgd-limit", type=int, default=500)
    parser.add_argument("--real-originals")
    parser.add_argument("--real-recaptured")
    parser.add_argument("--real-name", default="the real dev photos (four public sample "
                        "folders, not redistributed)")
    parser.add_argument("--limits", action="append", default=[],
                        help="a limit of the model, one per flag")
    args = parser.parse_args(argv)
    if bool(args.real_originals) != bool(args.real_recaptured):
        parser.error("--real-originals and --real-recaptured go together")

    from tfrecap.cli.options import DEFAULT_DATA_DIR
    from tfrecap.export import (
        latest_version_dir,
        load_config_asset,
        load_guard_asset,
        load_verdict,
    )
    from tfrecap.jsonio import write_json

    version_dir = latest_version_dir(args.model)
    config = load_config_asset(version_dir)
    real = None
    if args.real_originals and args.real_recaptured:
        real = {"originals": args.real_originals, "recaptured": args.real_recaptured,
                "name": args.real_name}
    measured = measure(args.model, data_dir=args.data_dir or str(DEFAULT_DATA_DIR),
                       dataset=args.dataset, real=real, limit=args.limit,
                       pgd_limit=args.pgd_limit)
    widths = config.get("model", {}).get("widths")
    card = {
        "schema_version": SCHEMA_VERSION,
        "name": args.model.name,
        "version": int(version_dir.name),
        "summary": args.summary,
        "training": {
            "dataset": args.dataset,
            "data": f"{args.dataset}, {config.get('data', {}).get('patch_size')}-px patches",
            "model": f"LaplacianCNN widths {widths}, pipeline {config.get('name')}",
            "command": args.train_command,
            "config": config,
            **({"guard": guard} if (guard := load_guard_asset(version_dir)) else {}),
        },
        "verdict": load_verdict(version_dir).to_dict(),
        "verdict_source": _verdict_source(args.model, config),
        "measured": measured,
        "robust_alternative": robust_alternative(config),
        "targets": targets(measured),
        "limits": args.limits,
    }
    write_json(args.model / CARD_JSON, card)
    (args.model / CARD_MD).write_text(render_card(card))
    print(f"Wrote {args.model / CARD_JSON} and {args.model / CARD_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
