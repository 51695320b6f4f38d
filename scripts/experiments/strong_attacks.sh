#!/usr/bin/env bash
# Issue 14's measurements (docs/attacks.md): the demo models of `tfrecap reproduce --profile demo
# --seeds 3` under PGD, APGD and the `auto` ensemble (APGD-CE, APGD-margin, Square), the minimum
# ε, attacks through JPEG, and attacks on the whole-image verdict. About 75 min on 2 loaded CPU
# cores; the seed-0 runs are the expensive ones.
#   DEMO=/path/to/reproduction/demo TFRECAP_DATA_DIR=... scripts/experiments/strong_attacks.sh OUT
# Optional: PHOTOS=DIR (holding originals/ and recaptured/) and PHOTO_MODEL=EXPORT for the
# whole-image attacks. SKIP_SEED0=1 skips the seed-0 runs (when they are already in OUT).
set -euo pipefail
out=${1:?usage: strong_attacks.sh OUT}
mkdir -p "$out"
# Square at 1000 queries, as in the demo profile; the ε = 255 check is the demo report's.
common=(--square-queries 1000 --no-unbounded-check)
if [[ -z "${SKIP_SEED0:-}" ]]; then
  for model in demo demo_baseline; do
    # Seed 0: PGD, APGD and auto at every ε of the paper on the first 128 test patches, plus
    # the minimum ε of 64 of them.
    tfrecap evaluate "$DEMO/saved_models/$model" --attack pgd,apgd,auto --eps 1,2,3,4,5 \
      --limit 128 "${common[@]}" --min-norm --min-norm-limit 64 \
      --json "$out/seed_0_$model.json" > "$out/seed_0_$model.md"
  done
fi
# Seeds 1 and 2: PGD and auto at ε = 2 and 4 on the first 64 test patches (the spread).
for seed in 1 2; do
  for model in demo demo_baseline; do
    tfrecap evaluate "$DEMO/seed_$seed/saved_models/$model" --attack pgd,auto --eps 2,4 \
      --limit 64 "${common[@]}" --json "$out/seed_${seed}_$model.json" \
      > "$out/seed_${seed}_$model.md"
  done
done
# Through JPEG at Q = 75: the attacks made without it, then through it (BPDA), judged after JPEG.
tfrecap evaluate "$DEMO/saved_models/demo" --attack pgd,apgd --eps 2,4 --limit 64 \
  --jpeg-quality 75 --through-jpeg --no-unbounded-check --json "$out/jpeg75_demo.json" \
  > "$out/jpeg75_demo.md"
if [[ -n "${PHOTOS:-}" ]]; then
  tfrecap evaluate "$PHOTO_MODEL" --originals "$PHOTOS/originals" --recaptured "$PHOTOS/recaptured" \
    --attack apgd --eps 2,4 --attack-limit 5 --apgd-steps 50 --json "$out/whole_image.json" \
    > "$out/whole_image.md"
fi
