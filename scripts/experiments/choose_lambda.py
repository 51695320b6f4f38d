"""Choose the penalty weight lambda by experiment (the paper does not give it).

For each lambda, train the given pipeline (default: ``demo``) with that
``[defence] penalty_weight`` and everything else unchanged, then measure on the
**validation** split (never the test split: this is model selection) the clean
accuracy, FGSM accuracy and PGD-margin accuracy. Prints a markdown table and
writes JSON.

Run:
    python scripts/experiments/choose_lambda.py --data-dir ~/tensorflow_datasets \
        --lambdas 0,0.1,1,10,100 --steps 600 --out runs/choose_lambda
"""

import argparse
from pathlib import Path

from tfrecap import config as cfg
from tfrecap import jsonio
from tfrecap.data.pipeline import make_dataset
from tfrecap.evaluation import AttackSpec, evaluate
from tfrecap.training import train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="demo")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--lambdas", default="0,0.1,1,10,100")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--out", default="runs/choose_lambda")
    args = parser.parse_args()

    base = cfg.load_pipeline(args.pipeline)
    out = Path(args.out)
    rows = []
    for lam in [float(v) for v in args.lambdas.split(",")]:
        config = cfg.override(
            base, **{"defence.penalty_weight": lam, "train.steps": args.steps,
                     "train.checkpoint_every": args.steps}
        )
        result = train(config, data_dir=args.data_dir, run_dir=out / f"lambda_{lam:g}", verbose=0,
                       log=lambda line: print(line) if line.startswith("Warning") else None)
        model = result.model
        data = make_dataset(args.data_dir, config.data.dataset, "validation", 64, training=False)
        report = evaluate(
            model, data,
            [AttackSpec("fgsm"),
             AttackSpec("pgd", {"steps": 10, "loss": "margin"})],
            [1.0, 3.0, 5.0], limit=args.limit, unbounded_check=False,
        )
        row = {"lambda": lam, "clean": report.clean.value, "n": report.clean.n,
               "train_seconds": round(result.seconds)}
        for attack in report.attacks:
            for eps, acc in zip(attack.eps, attack.accuracy, strict=True):
                row[f"{attack.spec.name}_eps{eps:g}"] = acc.value
        rows.append(row)
        print(jsonio.dumps(row, indent=None), flush=True)
    jsonio.write_json(out / "choose_lambda.json", {
        "schema_version": 1, "pipeline": args.pipeline, "steps": args.steps, "split":
        "validation", "rows": rows})
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k])
                                for k in keys) + " |")


if __name__ == "__main__":
    main()
