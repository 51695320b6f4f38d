#!/usr/bin/env bash
# Issue 15's measurements (docs/defences.md).
#   TFRECAP_DATA_DIR=... scripts/experiments/defences.sh OUT
# PART=pgd_at400 : demo_pgd_at trained 400 steps on synthetic_64 (the demo's data), then
#                  PGD-margin and FGSM at eps = 2 on the first 512 test patches, beside the
#                  demo's baseline export (BASELINE=.../saved_models/demo_baseline/1, from
#                  `tfrecap reproduce --profile demo`), on the same patches.
# PART=zoo       : `tfrecap reproduce --profile zoo --seeds ${SEEDS:-1}`, with whole-image
#                  figures when PHOTOS=DIR holds originals/ and recaptured/ (never commit them).
set -euo pipefail
out=${1:?usage: defences.sh OUT}
mkdir -p "$out"
part=${PART:-all}
if [[ $part == all || $part == pgd_at400 ]]; then
  tfrecap train --pipeline demo_pgd_at --steps 400 --run-dir "$out/runs/pgd_at400" \
    --export-dir "$out/saved/pgd_at400" --quiet
  version=$(ls "$out/saved/pgd_at400" | sort -n | tail -1)
  tfrecap evaluate "$out/saved/pgd_at400/$version" --attack pgd,fgsm --loss margin --eps 2 \
    --limit 512 --no-unbounded-check --json "$out/pgd_at400.json" > "$out/pgd_at400.md"
  tfrecap evaluate "${BASELINE:?set BASELINE to the demo baseline export}" --attack pgd,fgsm \
    --loss margin --eps 2 --limit 512 --no-unbounded-check --json "$out/baseline.json" \
    > "$out/baseline.md"
fi
if [[ $part == all || $part == zoo ]]; then
  photos=()
  if [[ -n ${PHOTOS:-} ]]; then
    photos=(--originals "$PHOTOS/originals" --recaptured "$PHOTOS/recaptured")
  fi
  tfrecap reproduce --profile zoo --seeds "${SEEDS:-1}" --output "$out/zoo" --quiet \
    "${photos[@]}"
fi
