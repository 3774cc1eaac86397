#!/bin/bash
# GPU check, on a host with an NVIDIA GPU and `make venv` done (see README, "On a GPU"):
#   1. the provider the service chooses (TensorRT probe, then CUDA),
#   2. bench/inference.py there (with a CPU agreement check, ORT vs torch eager on the GPU),
#   3. `cardiogate serve` end to end: a synthetic scan over C-STORE, reported on the GPU,
#      /readyz and /metrics naming the provider.
# Writes its evidence under $OUT (default /tmp/gpu-check). Run from the repository root.
set -u
PY=${PY:-.venv/bin/python}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
t0=$(date +%s)
export PYTHONPATH="$PWD/models/training${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -c "import onnxruntime as o, sys; print(sys.version.split()[0], o.__version__, o.get_device(), o.get_available_providers())"

echo "== 1. provider choice, as the service makes it (TensorRT probe, then CUDA)"
$PY - <<'P' 2>&1 | tee "$OUT/provider.log"
import logging, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from cardiogate.inference.engine import load_model
t = time.perf_counter()
m = load_model(Path("models/calcium"))
print("PROVIDER", m.provider, "session providers", m.session.get_providers(), f"load {time.perf_counter() - t:.1f} s")
P

echo "== 2. bench/inference.py on the chosen provider, CPU agreement, ORT vs torch eager on the GPU"
timeout 300 $PY bench/inference.py --runs ${RUNS:-3} --slices ${SLICES:-64,300} --json "$OUT/bench_gpu.json" 2>&1 | tee "$OUT/bench_gpu.log" | grep -v "^INFO cardiogate.inference.providers"

echo "== 3. cardiogate serve end to end: C-STORE a scan, job reported on CUDA, /readyz, /metrics"
rm -rf /tmp/cg && mkdir -p /tmp/cg
$PY -c "from cardiogate.cli import main; import sys; sys.exit(main(sys.argv[1:]))" synth ct --seed 2 --out /tmp/cg/scan > /dev/null
$PY -c "from cardiogate.cli import main; import sys; sys.exit(main(sys.argv[1:]))" synth xa --seed 21 --artery LCA --stenosis LAD:0.35:75 --out /tmp/cg/cine > /dev/null
CARDIOGATE_DATA_DIR=/tmp/cg/data CARDIOGATE_DICOM_PORT=11199 CARDIOGATE_HTTP_PORT=18099 CARDIOGATE_LISTENER_PROCESSES=1 \
  $PY -c "from cardiogate.cli import main; import sys; sys.exit(main(sys.argv[1:]))" serve > "$OUT/serve.log" 2>&1 &
SERVE=$!
for i in $(seq 120); do curl -sf http://127.0.0.1:18099/readyz > /dev/null && break; sleep 1; done
curl -s http://127.0.0.1:18099/readyz | tee "$OUT/readyz.json"; echo
$PY bench/send_and_wait.py /tmp/cg/scan 11199 http://127.0.0.1:18099 /tmp/cg/data/api-token > "$OUT/series.json" 2>&1
grep -E '"state"|"provider"|"total"|"reason"' "$OUT/series.json" | head -12
cat /tmp/cg/scan/truth.json | head -c 300; echo
$PY bench/send_and_wait.py /tmp/cg/cine 11199 http://127.0.0.1:18099 /tmp/cg/data/api-token > "$OUT/series_xa.json" 2>&1
grep -E '"state"|"provider"|"significant"|"percent_stenosis"|"x_px"|"y_px"|"frame"' "$OUT/series_xa.json" | head -12
$PY -c "import json; t=json.load(open('/tmp/cg/cine/truth.json')); l=t['lesions'][0]; print('truth', l['percent_stenosis'], l['positions_px'][:8])"
curl -s http://127.0.0.1:18099/metrics | grep -E "^cardiogate_(model_info|inference_seconds_(count|sum))" | tee "$OUT/metrics.txt"
kill -TERM $SERVE; wait $SERVE; echo "serve exit $?"
grep -ciE "error|fail" "$OUT/serve.log"; head -30 "$OUT/serve.log"
echo "total $(( $(date +%s) - t0 )) s"
