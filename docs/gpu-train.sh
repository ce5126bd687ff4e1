#!/bin/bash
# Train one of the shipped models on a lent GPU machine (see docs/gpu-training.md).
#
#   bash docs/gpu-train.sh baseline [EPOCHS] [more train flags]
#   bash docs/gpu-train.sh masked EPOCHS [more train flags]
#
# Without EPOCHS, a 3-epoch calibration run sizes the epochs to $BUDGET seconds of training.
# The masked scheme takes its attention maps from the baseline this script registered in
# /tmp/models on the same (still warm) machine, else from gpu/baseline.{pt,json}.
# The run folder (weights and logs, not the 58 MB checkpoint) comes back through $OUT in
# 15 MB pieces: cat NAME.tar.part-* | tar xf - -C runs
set -u -o pipefail
export PYTHONUNBUFFERED=1
START=$(date +%s)
SCHEME=$1; EPOCHS=${2:-}; shift $(( $# < 2 ? $# : 2 ))
DEVICE=${DEVICE:-cuda}; WORKERS=${WORKERS:-14}; BUDGET=${BUDGET:-380}; LIMIT=${LIMIT:-}; CALL=${CALL:-575}
RUN=${RUN:-runs/$SCHEME-h100}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
log() { echo "[$(( $(date +%s) - START )) s] $*"; }
if [ ! -d ../shared/datasets/fer2013/train ]; then
  mkdir -p ../shared/datasets && tar xzf packed/fer2013.tar.gz -C ../shared/datasets || exit 1
fi
if [ ! -d /tmp/site/huey ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD
log "ready: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null) $(nproc) cores"
COMMON=(--arch vgg --arch-args '{"widths": [64, 128, 256, 512]}' --input-size 44 --seed 0 --device "$DEVICE" --workers "$WORKERS")
[ -n "$LIMIT" ] && COMMON+=(--limit "$LIMIT")
if [ -z "$EPOCHS" ]; then
  rm -rf /tmp/calib
  python3 -m core train "${COMMON[@]}" --epochs 3 --run-dir /tmp/calib || exit 1
  EPOCHS=$(python3 -c "
import json; rows=[json.loads(l) for l in open('/tmp/calib/metrics.jsonl')][1:]
per=sum(r['seconds'] for r in rows)/len(rows)*1.1+0.3  # + checkpoint writing
print(max(3, min(300, int($BUDGET/per))))")
fi
log "epochs $EPOCHS"; echo "$EPOCHS" > "$OUT/epochs.txt"
EXTRA=()
if [ "$SCHEME" = masked ]; then
  if [ -f /tmp/models/baseline.pt ]; then cp /tmp/models/baseline.pt /tmp/models/baseline.json models/
  elif [ -f gpu/baseline.pt ]; then cp gpu/baseline.pt gpu/baseline.json models/
  else echo "no baseline for the attention maps"; exit 1; fi
  EXTRA=(--scheme masked --mask-mode random --attention-model models/baseline.pt)
fi
LEFT=$(( CALL - 30 - ($(date +%s) - START) ))
log "training $RUN for at most $LEFT s"
timeout "$LEFT" python3 -m core train "${COMMON[@]}" "${EXTRA[@]}" "$@" --epochs "$EPOCHS" --run-dir "$RUN" 2>&1 \
  | tee "$OUT/$(basename "$RUN").log"
log "trained: exit ${PIPESTATUS[0]}"
if [ "$SCHEME" = baseline ]; then
  python3 -m core register "$RUN" --name baseline --models-dir /tmp/models && log registered
fi
tar cf - --exclude checkpoint.pt --exclude clusters.npz -C "$(dirname "$RUN")" "$(basename "$RUN")" \
  | split -b 15M - "$OUT/$(basename "$RUN").tar.part-"
log "packed: $(ls "$OUT" | tr '\n' ' ')"
