#!/usr/bin/env bash
# Reproduce Zhao et al. 2018, Section 4 (Tables 1-3) at the paper's settings on a GPU machine:
# Yang's baseline and the secure model at 64, 128, 256 and 512 pixels, 100k steps each, then
# FGSM, LLCM (TGSM) and PGD, and a report with the paper's figures beside ours.
#
# Usage:
#   1. Import the real recapture databases (ICL-COMMSP, NTU-ROSE, BJTU-IIS or your own), once
#      per patch size, under the names the paper pipelines expect:
#        for S in 64 128 256 512; do
#          tfrecap data import --originals ORIG_DIR --recaptured RECAP_DIR \
#              --size "$S" --dataset "real_$S" --data-dir ~/tensorflow_datasets
#        done
#   2. Run this script; every argument is passed on to `tfrecap reproduce`:
#        scripts/reproduce_paper.sh --data-dir ~/tensorflow_datasets
#      The default datasets are synthetic_64 / synthetic_128 (built automatically) and
#      real_256 / real_512. To use your real data at every size:
#        scripts/reproduce_paper.sh --data-dir ~/tensorflow_datasets --dataset 'real_{size}'
#      One size only:  scripts/reproduce_paper.sh --sizes 256 ...
#   3. Rerunning the same command resumes: training continues from the last checkpoint in
#      OUTPUT/runs/NAME, and finished models and their evaluations are reused.
#
# The report is written to reproduction/paper/report.md unless --output DIR is given.
set -euo pipefail

if ! command -v tfrecap >/dev/null 2>&1; then
    echo "tfrecap is not installed: pip install -e . (from the repository root)" >&2
    exit 1
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >&2 || true
else
    echo "warning: no GPU found; the paper profile trains 8 models x 100k steps" >&2
fi

exec tfrecap reproduce --profile paper "$@"
