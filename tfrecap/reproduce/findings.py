"""Findings of a reproduction: plain sentences written from its numbers.

Each finding pairs figures with a verdict ("the defence holds against this attack"). The
verdict is decided on every training seed separately: a sentence states it only when it holds
for every seed, and otherwise names the seeds each verdict holds on, so that no sentence rests
on one lucky run.
"""

from __future__ import annotations

from tfrecap.evaluation.checks import noise_tolerance
from tfrecap.reproduce.paper_tables import (
    METHODS,
    PAPER_TABLES,
    PAPER_TEST_N,
    ROLES,
    paper_at,
    paper_cell,
)
from tfrecap.reproduce.profiles import is_synthetic
from tfrecap.reproduce.results import (
    SUBSET_FGSM,
    SUBSET_PGD,
    SizeRun,
    eps_of,
    row,
    spread_text,
)


def _overlap(a: dict, b: dict) -> bool:
    return a["ci"][0] <= b["ci"][1] and b["ci"][0] <= a["ci"][1]


def agreed(verdicts: list[str], seeds: list[int]) -> str:
    """``verdicts[i]`` is seed ``seeds[i]``'s: one verdict when all agree, else each with the
    seeds it holds on, e.g. "on seeds 0 and 2, X; on seed 1, Y"."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    groups: dict[str, list[int]] = {}
    for verdict, seed in zip(verdicts, seeds, strict=True):
        groups.setdefault(verdict, []).append(seed)
    return "; ".join(f"on {seed_list(s)}, {v}" for v, s in groups.items())


def seed_list(seeds: list[int]) -> str:
    """"seed 0" or "seeds 0, 1 and 2", for findings sentences."""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {', '.join(map(str, seeds[:-1]))} and {seeds[-1]}"


def _clean_verdict(b: dict, s: dict) -> str:
    return ("the difference is within the 95% intervals" if _overlap(b, s) else
            "the secure model pays for its robustness in clean accuracy"
            if s["accuracy"] < b["accuracy"] else "the secure model is more accurate")


def _attack_verdict(clean_b: dict, rb: dict, rs: dict) -> str:
    gain = rs["accuracy"] - rb["accuracy"]
    if rb["accuracy"] >= clean_b["accuracy"] - 0.05:
        return "the attack barely moves even the baseline here, so this says little"
    if gain > 0.2 and rs["accuracy"] > 0.5:
        return "the defence holds against this attack"
    if gain > 0.05:
        return "the defence helps only partly"
    return "the defence gives no real protection against it"


def _pgd_verdict(f: dict, p: dict) -> str:
    drop = f["accuracy"] - p["accuracy"]
    if f["accuracy"] < 0.5:
        return ("it is below 50% even under FGSM here, so there is no robustness for "
                "PGD to test")
    if drop > 0.2 or (f["accuracy"] > 0.2 and p["accuracy"] < 0.5 * f["accuracy"]):
        return ("its FGSM robustness largely disappears under PGD: resisting the attack "
                "it was trained on does not make it robust to an adaptive attacker")
    if drop > 0.05 and not _overlap(f, p):
        return ("PGD takes away part of it: some of the FGSM robustness is specific to "
                "the single-step attack")
    return "its FGSM robustness survives PGD"


def findings(run: SizeRun) -> list[str]:
    """Plain sentences about one size, generated from its numbers (over every seed)."""
    bases, secs = run.results_of("baseline"), run.results_of("secure")
    seeds = run.seed_values
    size = f"{run.size}×{run.size}"
    out = []

    def acc(rows):
        return spread_text([r["accuracy"] if r else None for r in rows])

    bs, ss = [b["clean"] for b in bases], [s["clean"] for s in secs]
    pb, ps = (PAPER_TABLES["table1"][role].get(run.size) for role in ("baseline", "secure"))
    paper = f" (paper: {paper_cell(pb)} vs {paper_cell(ps)})" if pb else ""
    verdict = agreed([_clean_verdict(b, s) for b, s in zip(bs, ss, strict=True)], seeds)
    out.append(f"**{size}, clean.** Baseline {acc(bs)}, secure {acc(ss)}{paper}: {verdict}.")

    for method, label in METHODS.items():
        eps = eps_of(bases[0], method)
        if not eps:
            continue
        e = max(eps)
        rbs, rss = [row(b, method, e) for b in bases], [row(s, method, e) for s in secs]
        pb, ps = paper_at("table2", run.size, method, e), paper_at("table3", run.size,
                                                                     method, e)
        paper = f" (paper: {paper_cell(pb)} and {paper_cell(ps)})" if pb is not None else ""
        verdict = agreed([_attack_verdict(*x) for x in zip(bs, rbs, rss, strict=True)], seeds)
        out.append(f"**{size}, {label} at ε = {e:g}.** Baseline {acc(rbs)}, secure "
                   f"{acc(rss)}{paper}: {verdict}.")

    common = sorted(set(eps_of(secs[0], "pgd")) & set(eps_of(secs[0], SUBSET_FGSM)))
    if common:
        e = common[-1]
        fs, ps_ = [row(s, SUBSET_FGSM, e) for s in secs], [row(s, "pgd", e) for s in secs]
        pbs = [row(b, "pgd", e) for b in bases]
        verdict = agreed([_pgd_verdict(f, p) for f, p in zip(fs, ps_, strict=True)], seeds)
        out.append(
            f"**{size}, PGD at ε = {e:g}** ({ps_[0]['n']} patches). The secure model keeps "
            f"{acc(ps_)} under PGD against {acc(fs)} under FGSM on the "
            f"same patches: {verdict}. The baseline keeps {acc(pbs)}."
        )

    auto = _auto_finding(secs, bases, seeds, size, acc)
    if auto:
        out.append(auto)
    out.append(_checks_finding(run, size))
    n = min(bases[0]["n"], secs[0]["n"])
    if n < 200:
        out.append(f"With n = {n} test patches the intervals are wide; read these numbers as "
                   "illustrative.")
    return out


def auto_verdict(p: dict, a: dict) -> str:
    """Whether ``auto`` found more than noise beyond PGD (result cells ``p`` and ``a``)."""
    if p["accuracy"] - a["accuracy"] > noise_tolerance(p["accuracy"], p["n"]):
        return "PGD overstated its robustness"
    return "PGD's figure stands: auto finds no more than noise beyond it"


def _auto_finding(secs, bases, seeds, size, acc) -> str | None:
    """The secure model under ``auto`` against PGD on the same patches, at the largest ε."""
    common = sorted(set(eps_of(secs[0], "auto")) & set(eps_of(secs[0], SUBSET_PGD)))
    if not common:
        return None
    e = common[-1]
    ps, as_ = [row(s, SUBSET_PGD, e) for s in secs], [row(s, "auto", e) for s in secs]
    verdicts = [auto_verdict(p, a) for p, a in zip(ps, as_, strict=True)]
    gaps = [p["accuracy"] - a["accuracy"] for p, a in zip(ps, as_, strict=True)]
    by = (f" by {spread_text(gaps, lambda v: f'{100 * v:.1f} points')}"
          if "PGD overstated its robustness" in verdicts else "")
    return (f"**{size}, auto at ε = {e:g}** ({as_[0]['n']} patches). The secure model keeps "
            f"{acc(as_)} under auto against {acc(ps)} under PGD on the same patches: "
            f"{agreed(verdicts, seeds)}{by}. The baseline keeps "
            f"{acc([row(b, 'auto', e) for b in bases])} under auto.")


def _checks_finding(run: SizeRun, size: str) -> str:
    per_seed = []
    for seed_run in run.seeds:
        failed = [(name, c["name"]) for role, name in ROLES.items()
                  for c in seed_run.results[role]["checks"] if not c["passed"]]
        total = sum(len(seed_run.results[role]["checks"]) for role in ROLES)
        per_seed.append((seed_run.seed, failed, total))
    if len(per_seed) == 1:
        _, failed, total = per_seed[0]
        if failed:
            return (f"**{size}, sanity checks.** {len(failed)} of {total} fail — possible "
                    "gradient masking, so the accuracies under attack above may overstate "
                    "robustness: " + "; ".join(f"{n}: {c}" for n, c in failed) + ".")
        return f"**{size}, sanity checks.** All {total} pass for both models."
    if not any(failed for _, failed, _ in per_seed):
        return (f"**{size}, sanity checks.** All {per_seed[0][2]} pass for both models on "
                f"every seed.")
    parts = []
    for seed, failed, total in per_seed:
        parts.append(f"on seed {seed}, " + (
            f"{len(failed)} of {total} fail (" + "; ".join(f"{n}: {c}" for n, c in failed)
            + ")" if failed else f"all {total} pass"))
    return (f"**{size}, sanity checks.** Possible gradient masking, so the accuracies under "
            "attack above may overstate robustness: " + "; ".join(parts) + ".")


def simulated(run) -> bool:
    """Whether ``run`` (a :class:`~tfrecap.reproduce.results.SizeRun`) trained on simulated
    recaptures: as recorded when its data was prepared, else by its dataset's name."""
    recorded = getattr(run, "simulated", None)
    return is_synthetic(run.dataset, run.size) if recorded is None else recorded


def findings_section(runs) -> str:
    lines = ["## Findings", ""]
    for r in runs:
        lines.append(" ".join(findings(r)))
        lines.append("")
    synthetic = [r for r in runs if simulated(r)]
    steps = sorted({c.train.steps for r in runs for c in r.configs.values()})
    if synthetic or steps != [100_000]:
        lines.append(
            "These results come from "
            + ("simulated recaptures of a few bundled photographs" if synthetic
               else "the imported photographs")
            + f" and {'/'.join(map(str, steps))} training steps, while the paper used real "
            f"recaptured photographs (n = {PAPER_TEST_N} test images per size) and 100k steps: "
            "compare directions and gaps with the paper, not the digits. LLCM and FGSM "
            "coincide on correctly classified images for a 2-class model, so LLCM being "
            "clearly weaker than FGSM, as in the paper's tables, is not expected here "
            "(see the |acc_llcm - acc_fgsm| check)."
        )
    return "\n".join(lines)

