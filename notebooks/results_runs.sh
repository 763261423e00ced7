#!/usr/bin/env bash
# The training and evaluation runs behind docs/RESULTS.md (synthetic benchmark, CPU).
#
#   bash notebooks/results_runs.sh LANE [DATA]     LANE: vgcl | cpc | base | vslnet | text | extra | cascade | table3 | table4 | variant | shipped | archive
#   SEEDS=0 bash notebooks/results_runs.sh vgcl     # one seed; GROUND_EPOCHS=5 for the short protocol
#   SEEDS=0 GROUND_EPOCHS=40 PATIENCE=4 OUT=runs/v3 bash notebooks/results_runs.sh text data/synth_v3  # to convergence
#   bash notebooks/results_runs.sh variant TAG ARGS # one seed-0 VGCL variant (pre-training ARGS)
#   OUT=results/listening_demo bash notebooks/results_runs.sh shipped assets/demo_bundle  # the shipped checkpoints
#
# Each lane runs its jobs one after another with one CPU thread, so two lanes share a 2-core
# machine without oversubscription. Runs go to $OUT/NAME (default runs/results_e$GROUND_EPOCHS;
# train logs in NAME.log), test predictions to $OUT/eval/NAME_NOISE.jsonl, and their metrics with the
# listening diagnostics (within-video discrimination; silent, other-video and, for text, shuffled-word
# query controls, each one more pass over the split) to $OUT/eval/NAME_NOISE.metrics.json. Re-running
# a finished job is skipped and a killed one resumes from its last epoch. The archive lane copies the
# logged results (no weights) to ${ARCHIVE:-results/e$GROUND_EPOCHS}, which is committed:
# svg_core.results and notebooks/results.py read either folder.
set -euo pipefail
LANE=${1:?lane: vgcl | cpc | base | vslnet | text | extra | cascade | table3 | table4 | variant | shipped | archive}
SEEDS=${SEEDS:-0 1 2}
if [[ $LANE == variant ]]; then DATA=${DATA:-data/synth_default}; else DATA=${2:-data/synth_default}; fi
PY=${PY:-.venv/bin/python}
GROUND_EPOCHS=${GROUND_EPOCHS:-10}
OUT=${OUT:-runs/results_e$GROUND_EPOCHS}
mkdir -p "$OUT/eval"
COMMON=(--data "$DATA" --preset small --batch-size 32 --threads 1 --no-progress)
# PATIENCE=N: early stopping on val after N epochs without a better score (GROUND_EPOCHS is then the most run)
if [[ -n ${PATIENCE:-} ]]; then COMMON+=(--patience "$PATIENCE"); fi
# MIN_EPOCHS=N: no early stop before epoch N (audio models plateau on the video prior first)
if [[ -n ${MIN_EPOCHS:-} ]]; then COMMON+=(--min-epochs "$MIN_EPOCHS"); fi
PRE_EPOCHS=${PRE_EPOCHS:-3}

train() {  # NAME ARGS... : one training run; skipped once NAME/summary.json exists (a finished run)
  local name=$1; shift
  while pgrep -f -- "--out $OUT/$name( |$)" > /dev/null; do sleep 30; done  # started by another lane
  if [[ -e $OUT/$name/summary.json ]]; then echo "skip $name"; return; fi
  local resume=()  # a run killed part-way (session end) goes on from its last epoch: same weights
  if [[ -e $OUT/$name/last/training_state.pt ]]; then resume=(--resume); else : > "$OUT/$name.log"; fi
  echo "$(date -u +%H:%M:%S) start $name ${resume[*]}"
  /usr/bin/time -f "$name wall %e s" "$PY" -m svg_core.train "${COMMON[@]}" --out "$OUT/$name" "${resume[@]}" "$@" \
    >> "$OUT/$name.log" 2>&1  # appended: a resumed run logs one wall line per part, which results sums
  echo "$(date -u +%H:%M:%S) done $name"
}

evaluate() {  # NAME NOISE [CHECKPOINT] : test metrics and listening diagnostics of CHECKPOINT (default NAME/best)
  local name=$1 noise=$2 ckpt=${3:-$OUT/$1/best}
  local stem=$OUT/eval/${name}_$noise
  [[ -e $stem.txt ]] && return  # the report is moved in place only once the evaluation finished
  while pgrep -f -- "--out $OUT/$name( |$)" > /dev/null; do sleep 30; done  # still training
  (  # two lanes that reach the same run (see the variant lane) evaluate it once: a lock per report
    flock 9
    [[ -e $stem.txt ]] && exit 0
    "$PY" -m svg_core.evaluate --checkpoint "$ckpt" --data "$DATA" --split test --noise "$noise" \
      --threads 1 --listening --out "$stem.jsonl" --metrics-out "$stem.metrics.json" > "$stem.txt.part" 2>&1
    mv "$stem.txt.part" "$stem.txt"
  ) 9> "$stem.lock"
  rm -f "$stem.lock"
}

vgcl() {  # pre-train (Eq. 7 curriculum, linear pacing, kappa 10) then ground, fine-tuning the encoder
  local seed=$1 tag=${2:-} ; shift 2 || true
  train "vgcl_pre${tag}_s$seed" --stage pretrain --model vgcl --epochs "$PRE_EPOCHS" --seed "$seed" "$@"
  train "vgcl_base${tag}_s$seed" --model vgcl_base --pretrained-encoder "$OUT/vgcl_pre${tag}_s$seed/encoder" \
    --epochs "$GROUND_EPOCHS" --seed "$seed"
  evaluate "vgcl_base${tag}_s$seed" normal
}

case $LANE in
  # One lane per model; SEEDS picks the seeds (default 0 1 2). Lanes run their jobs in order, so
  # a session's plan is a chain, e.g. `SEEDS=0 bash $0 vgcl && bash $0 extra && bash $0 cascade`.
  vgcl) for seed in $SEEDS; do vgcl "$seed" ""; done ;;
  cpc)
    for seed in $SEEDS; do
      train "cpc_pre_s$seed" --stage pretrain --model cpc --epochs "$PRE_EPOCHS" --seed "$seed"
      train "cpc_base_s$seed" --model cpc_base --pretrained-encoder "$OUT/cpc_pre_s$seed/encoder" \
        --epochs "$GROUND_EPOCHS" --seed "$seed"
      evaluate "cpc_base_s$seed" normal
    done ;;
  base | vslnet | text)  # the Base network, VSLNet-audio, the text model on the original captions
    for seed in $SEEDS; do train "${LANE}_s$seed" --model "$LANE" --epochs "$GROUND_EPOCHS" --seed "$seed"
      evaluate "${LANE}_s$seed" normal; done ;;
  extra)  # Fig. 4 noise levels (clean, large) for the finished Base and VGCL runs of SEEDS
    for seed in $SEEDS; do for name in "base_s$seed" "vgcl_base_s$seed"; do
      [[ -e $OUT/$name/summary.json ]] || continue
      for noise in clean large; do evaluate "$name" "$noise"; done
    done; done ;;
  cascade)  # ASR cascades on the first ${CASCADE_LIMIT:-100} test queries; transcripts cached for every text seed
    for engine in whisper sphinx; do for noise in normal clean large; do for seed in 0 1 2; do
      while pgrep -f -- "--out $OUT/text_s$seed( |$)" > /dev/null; do sleep 30; done  # still training
      [[ -e $OUT/text_s$seed/summary.json ]] || continue  # a finished text run only
      f=$OUT/eval/cascade_${engine}_${noise}_text_s$seed
      [[ -e $f.txt ]] && continue
      "$PY" -m svg_core.cascade evaluate --data "$DATA" --checkpoint "$OUT/text_s$seed/best" --engine "$engine" \
        --noise "$noise" --limit "${CASCADE_LIMIT:-100}" --threads 1 --transcripts "$OUT/eval/transcripts.jsonl" \
        --out "$f.jsonl" > "$f.txt" 2>&1
    done; done; done
    ;;  # the original-caption row is the text model's own evaluation (text_sN_normal)
  table3)  # VGCL ablations (seed 0): each a pre-training variant, then the same grounding run
    vgcl 0 _nocl --no-curriculum; vgcl 0 _noent --no-entire-video; vgcl 0 _nosa --no-self-attention
    vgcl 0 _crop128 --crop-frames 128 ;;
  table4)  # curriculum pacing x kappa (seed 0); linear kappa 10 is the full model of the vgcl lane
    vgcl 0 _lin5 --pacing linear --kappa 5
    for pacing in exponential logarithmic; do for kappa in 5 10; do
      vgcl 0 "_${pacing:0:3}$kappa" --pacing "$pacing" --kappa "$kappa"
    done; done ;;
  variant)  # one seed-0 VGCL variant, e.g. `bash $0 variant _log10 --pacing logarithmic --kappa 10`:
    # a third job next to the table3/table4 lanes; they wait for its runs and then skip them
    tag=${2:?variant TAG PRETRAIN-ARGS... (data from \$DATA)}; shift 2; vgcl 0 "$tag" "$@" ;;
  shipped)  # the committed checkpoints/* under their seed-0 run names (they are those runs' kept weights)
    for pair in base:base base_cpc:cpc_base vslnet_audio:vslnet vgcl_full:vgcl_base text:text; do
      evaluate "${pair#*:}_s0" normal "checkpoints/${pair%%:*}"
    done ;;
  archive)  # logged results only (metrics, logs, per-query predictions, configs): small enough to commit
    dest=${ARCHIVE:-results/e$GROUND_EPOCHS}; mkdir -p "$dest"; dest=$(cd "$dest" && pwd)
    # finished runs only (NAME/summary.json): a run killed part-way stays out until it is resumed
    (cd "$OUT" && for run in */summary.json; do
       [[ -e $run ]] || continue; name=${run%/summary.json}
       if [[ -e $name.log ]]; then cp "$name.log" "$dest/"; fi
       find "$name" \( -name log.csv -o -name summary.json -o -path '*/best/config.json' \
         -o -path '*/best/metrics.json' \) -type f -exec cp --parents {} "$dest" \;
     done
     find ./eval \( -name '*.jsonl' -o -name '*.txt' -o -name '*.metrics.json' \) -type f -exec cp --parents {} "$dest" \;)
    "$PY" -m svg_core.results "$dest" --data "$DATA" --save-data-summary > /dev/null  # prior + caption needs
    echo "archived $OUT -> $dest" ;;
  *) echo "unknown lane $LANE" >&2; exit 2 ;;
esac
