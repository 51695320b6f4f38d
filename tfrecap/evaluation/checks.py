"""The sanity checks of Carlini et al. 2019, "On Evaluating Adversarial Robustness".

Each check must hold, or the report says so in words: a failed check's detail says
**"possible gradient masking"** (DESIGN.md, "Evaluation and honesty"). A single-step attack
that gets weaker at larger ε is a note, not a failure: its linear step overshoots, as in the
paper's Table 2. Differences within two binomial standard errors count as noise.
"""

from __future__ import annotations

import math

from tfrecap.evaluation.report import AttackResult, AttackSpec, Check
from tfrecap.evaluation.stats import Accuracy

MASKING = "possible gradient masking"
# The eps = 255 sanity check: PGD-margin with this many steps of this size (pixel levels).
UNBOUNDED_STEPS = 200
UNBOUNDED_STEP_SIZE = 2.0
UNBOUNDED_TITLE = "pgd (eps=255)"  # the check's attack in a report; its own table line
UNBOUNDED_EPS = 255.0
# Attacks that iterate toward the worst case, so their accuracy must not rise with eps; a
# single step (FGSM, LLCM) may overshoot, which is a note.
ITERATIVE = ("pgd", "apgd", "square", "auto")


def unbounded_spec() -> AttackSpec:
    """The attack of the "an unbounded attack reaches about 0%" check.

    One restart, so PGD starts at x: a uniform start in an ε = 255 ball is pure noise, which
    this detector reads as "recaptured" and PGD cannot undo. Small steps, many of them: a
    sign step of 4 levels or more is itself a recapture trace to this detector. Measured on
    the secure demo model (256 test patches): 20 × 8, 50 × 8 and 100 × 4 left 53–54 % correct
    (every recapture), 200 × 2 left 0.8 %.
    """
    return AttackSpec("pgd", {"steps": UNBOUNDED_STEPS, "step_size": UNBOUNDED_STEP_SIZE,
                              "loss": "margin"}, UNBOUNDED_TITLE)


def noise_tolerance(value: float, n: int) -> float:
    """Two binomial standard errors of an accuracy ``value`` of ``n`` images (at least one
    image): what counts as noise."""
    n = max(n, 1)
    p = min(max(value, 1 / n), 1 - 1 / n)
    return max(2 * math.sqrt(p * (1 - p) / n), 1 / n)


def _tolerance(acc: Accuracy) -> float:
    return noise_tolerance(acc.value, acc.n)


def sanity_checks(clean: Accuracy, results: list[AttackResult]) -> tuple[list[Check], list[str]]:
    """The checks of DESIGN.md, "Evaluation and honesty". Returns (checks, notes)."""
    checks, notes = [], []
    by_title = {r.spec.title: r for r in results}
    whitebox = [r for r in results
                if r.transfer_from is None and r.spec.title != UNBOUNDED_TITLE]

    for r in whitebox:
        rising = [
            (a_eps, b_eps, a.value, b.value)
            for a_eps, b_eps, a, b in zip(
                r.eps[:-1], r.eps[1:], r.accuracy[:-1], r.accuracy[1:], strict=True
            )
            if b.value > a.value + _tolerance(a)
        ]
        if r.spec.name in ITERATIVE:
            checks.append(Check(
                f"{r.spec.title}: accuracy does not rise with eps",
                not rising,
                "ok" if not rising else f"{MASKING}: accuracy rises from "
                + "; ".join(f"{a:.1%} at eps={e1:g} to {b:.1%} at eps={e2:g}"
                            for e1, e2, a, b in rising),
            ))
        elif rising:
            notes.append(
                f"{r.spec.title} gets weaker at larger eps ("
                + "; ".join(f"{a:.1%} at eps={e1:g} -> {b:.1%} at eps={e2:g}"
                            for e1, e2, a, b in rising)
                + "): a single linear step overshoots, as in the paper's Table 2. "
                "Not by itself a sign of masking."
            )
        frac = r.zero_grad_fraction
        ok = not (frac > 0.01)
        checks.append(Check(
            f"{r.spec.title}: zero-gradient fraction is small",
            ok,
            f"{frac:.2%} of images had an all-zero input gradient"
            + ("" if ok else f" (> 1%): {MASKING}"),
        ))

    fgsm, pgd, llcm = by_title.get("fgsm"), by_title.get("pgd"), by_title.get("llcm")
    if fgsm and pgd:
        worse = [(e, p.value, f.value) for e in pgd.eps
                 if (p := pgd.at(e)) and (f := fgsm.at(e)) and p.value > f.value + _tolerance(f)]
        checks.append(Check(
            "pgd is at least as strong as fgsm",
            not worse,
            "ok" if not worse else f"{MASKING}: PGD leaves more correct than FGSM at "
            + "; ".join(f"eps={e:g} ({p:.1%} vs {f:.1%})" for e, p, f in worse),
        ))
    if fgsm and llcm:
        bound = 1 - clean.value
        broken = [(e, lv.value, fv.value) for e in llcm.eps
                  if (lv := llcm.at(e)) and (fv := fgsm.at(e))
                  and abs(lv.value - fv.value) > bound + 1e-9]
        checks.append(Check(
            "|acc_llcm - acc_fgsm| <= clean error",
            not broken,
            f"clean error {bound:.1%}; "
            + ("ok" if not broken else f"{MASKING} or a broken gradient: "
               + "; ".join(f"eps={e:g}: llcm {lv:.1%} vs fgsm {fv:.1%}" for e, lv, fv in broken)),
        ))
    for r in whitebox:
        check = _gradient_free_check(r)
        if check:
            checks.append(check)
    apgd, square = by_title.get("apgd"), by_title.get("square")
    if apgd and square:
        worse = [(e, a.value, s.value) for e in apgd.eps
                 if (a := apgd.at(e)) and (s := square.at(e)) and a.value > s.value
                 + _tolerance(s)]
        checks.append(Check(
            "apgd is at least as strong as square",
            not worse,
            "ok" if not worse else f"{MASKING}: the gradient-free Square leaves fewer "
            "correct than APGD at " + "; ".join(f"eps={e:g} ({a:.1%} vs {s:.1%})"
                                                for e, a, s in worse),
        ))
    unbounded = by_title.get(UNBOUNDED_TITLE)
    if unbounded and unbounded.accuracy[0].n:
        acc = unbounded.accuracy[0]
        ok = acc.value <= 0.02
        checks.append(Check(
            "an unbounded attack reaches about 0%",
            ok,
            f"PGD-margin at eps=255 leaves {acc.value:.1%} correct (n={acc.n})"
            + ("" if ok else f": {MASKING}"),
        ))
    for r in results:
        if r.transfer_from is None:
            continue
        white = by_title.get(r.spec.title.replace(" (transfer)", ""))
        if not white:
            continue
        stronger = [(e, t.value, w.value) for e in r.eps
                    if (t := r.at(e)) and (w := white.at(e)) and t.value + _tolerance(w) < w.value]
        checks.append(Check(
            f"{r.spec.title} from {r.transfer_from} is weaker than white-box",
            not stronger,
            "ok" if not stronger else f"{MASKING}: the transferred attack beats white-box at "
            + "; ".join(f"eps={e:g} ({t:.1%} vs {w:.1%})" for e, t, w in stronger),
        ))
    return checks, notes


def _gradient_free_check(r: AttackResult) -> Check | None:
    """An ensemble's gradient-free members (Square) break nothing its white-box members
    missed: each member attacks only the images still correct, so any image Square breaks
    is one every gradient attack failed on (Croce & Hein 2020; DESIGN.md)."""
    free = [m["name"] for m in r.members if m.get("gradient_free")]
    if not free or not r.broken_by or len(free) == len(r.members):
        return None
    # Made through a BPDA JPEG, the white-box gradients are approximate by design.
    if "(through jpeg)" in r.spec.title:
        return None
    broke = [(e, sum(counts[name] for name in free), sum(counts.values()))
             for e, counts in zip(r.eps, r.broken_by, strict=True)]
    # A few images are noise (APGD's budget is finite); more than two standard errors' worth
    # of the images is the masking symptom.
    found = [(e, k, n) for e, k, n in broke if k and k / n > noise_tolerance(k / n, n)]
    few = [(e, k, n) for e, k, n in broke if k and (e, k, n) not in found]
    names = ", ".join(free)
    detail = "ok" if not found else (
        f"{MASKING}: {names} broke images that every white-box member failed on, at "
        + "; ".join(f"eps={e:g} ({k} of {n})" for e, k, n in found))
    if few:
        detail += ("; within noise: " + "; ".join(f"eps={e:g} ({k} of {n})" for e, k, n in few))
    return Check(
        f"{r.spec.title}: {names} breaks nothing the white-box members missed",
        not found,
        detail,
    )
