#!/usr/bin/env bash
# Deprecated: use `python -m svg_core.reporting.runs PLAN` (same lane names; see its --help). This maps LANE [DATA], variant TAG ARGS and the old variables onto it.
o=(${SEEDS:+--seeds $SEEDS} ${GROUND_EPOCHS:+--ground-epochs "$GROUND_EPOCHS"} ${PRE_EPOCHS:+--pre-epochs "$PRE_EPOCHS"} ${PATIENCE:+--patience "$PATIENCE"} ${MIN_EPOCHS:+--min-epochs "$MIN_EPOCHS"} ${OUT:+--out "$OUT"} ${ARCHIVE:+--archive "$ARCHIVE"} ${CASCADE_LIMIT:+--cascade-limit "$CASCADE_LIMIT"} ${PY:+--python "$PY"})
if [[ ${1:-} == variant ]]; then exec .venv/bin/python -m svg_core.reporting.runs variant "${@:2:1}" "${o[@]}" ${DATA:+--data "$DATA"} -- "${@:3}"; else exec .venv/bin/python -m svg_core.reporting.runs "${1:-}" "${o[@]}" ${2:+--data "$2"}; fi
