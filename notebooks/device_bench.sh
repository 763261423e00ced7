#!/usr/bin/env bash
# GPU figures for docs/RESULTS.md (run on a machine with CUDA; each command also prints that
# machine's CPU rows, so ratios are read from one run on one machine):
#
#   bash notebooks/device_bench.sh OUTDIR [ENGINES...]
#
# ENGINES: ASR engines for the cascade rows (default none: only the end-to-end and text-alone
# rows, for a machine without the Whisper model package). Checkpoints: the shipped ones.
set -euo pipefail
OUTDIR=${1:?output folder}; shift
PY=${PY:-python3}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUTDIR/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cpu threads', torch.get_num_threads())" | tee -a "$OUTDIR/gpu.txt"
for model in vgcl_full base; do
  "$PY" -m svg_core.bench latency --data assets/demo_bundle --audio-checkpoint "checkpoints/$model" \
    --text-checkpoint checkpoints/text --queries 50 --warmup 3 --engines "$@" 2>&1 | tee "$OUTDIR/latency_$model.txt"
done
for preset in small paper; do
  "$PY" -m svg_core.bench train --preset "$preset" --models base vslnet text vgcl --batch-size 32 --steps 20 \
    --cpu-steps 2 2>&1 | tee "$OUTDIR/train_$preset.txt"
done
