#!/usr/bin/env bash
# Issue 14's measurements (docs/attacks.md): the demo models of `tfrecap reproduce --profile demo
# --seeds 3` under PGD, APGD and the `auto` ensemble (APGD-CE, APGD-margin from a random start,
# Square), the minimum ε, attacks through JPEG, and attacks on the whole-image verdict.
#   DEMO=/path/to/reproduction/demo TFRECAP_DATA_DIR=... scripts/experiments/strong_attacks.sh OUT
# Optional: PHOTOS=DIR (holding originals/ and recaptured/) and PHOTO_MODEL=EXPORT for the
# whole-image attacks. PART=seed0|seed0_baseline|seeds|jpeg|whole runs one part (the parts are
# independent; on 2 CPU cores two of them at a time). The seed-0 secure model is the expensive
# one: about 45 min on 2 loaded cores.
set -euo pipefail
out=${1:?usage: strong_attacks.sh OUT}
mkdir -p "$out"
part=${PART:-all}
# Square at 1000 queries, as in the demo profile; the ε = 255 check is the demo report's.
common=(--square-queries 1000 --no-unbounded-check)
if [[ $part == all || $part == seed0 ]]; then
  # The secure model, seed 0: PGD, APGD and auto at every ε of the paper on the first 128
  # test patches, and the minimum ε of 64 of them.
  tfrecap evaluate "$DEMO/saved_models/demo" --attack pgd,apgd,auto --eps 1,2,3,4,5 \
    --limit 128 "${common[@]}" --min-norm --min-norm-limit 64 \
    --json "$out/seed_0_demo.json" > "$out/seed_0_demo.md"
fi
if [[ $part == all || $part == seed0_baseline ]]; then
  tfrecap evaluate "$DEMO/saved_models/demo_baseline" --attack pgd,apgd,auto --eps 1,2,3,4,5 \
    --limit 64 "${common[@]}" --json "$out/seed_0_demo_baseline.json" \
    > "$out/seed_0_demo_baseline.md"
fi
if [[ $part == all || $part == seeds ]]; then
  # The secure models of seeds 1 and 2: PGD and auto at ε = 2 and 4 on 64 patches.
  for seed in 1 2; do
    tfrecap evaluate "$DEMO/seed_$seed/saved_models/demo" --attack pgd,auto --eps 2,4 \
      --limit 64 "${common[@]}" --json "$out/seed_${seed}_demo.json" > "$out/seed_${seed}_demo.md"
  done
fi
if [[ $part == all || $part == jpeg ]]; then
  # Through JPEG at Q = 75: the attacks made without it, then through it (BPDA), judged after it.
  tfrecap evaluate "$DEMO/saved_models/demo" --attack pgd,apgd --eps 4 --limit 32 \
    --jpeg-quality 75 --through-jpeg --no-unbounded-check --json "$out/jpeg75_demo.json" \
    > "$out/jpeg75_demo.md"
fi
if [[ ($part == all || $part == whole) && -n "${PHOTOS:-}" ]]; then
  tfrecap evaluate "$PHOTO_MODEL" --originals "$PHOTOS/originals" --recaptured "$PHOTOS/recaptured" \
    --attack apgd --eps 4 --attack-limit 4 --apgd-steps 50 --json "$out/whole_image.json" \
    > "$out/whole_image.md"
fi
