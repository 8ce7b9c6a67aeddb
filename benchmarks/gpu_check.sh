#!/usr/bin/env bash
# The GPU checks of the training-speed work in one go, for a machine with CUDA GPUs:
#   1. training throughput, ganlab against a plain loop (benchmarks/train_throughput.py)
#   2. no host-device sync on steps that log nothing, under torch.cuda.set_sync_debug_mode
#      ("error"), plus bf16-mixed / 16-mixed on the GPU (tests/test_sync_free_steps.py,
#      tests/test_precision.py and tests/test_compile.py, GPU cases)
#   3. a short DDP run over all visible GPUs (scripts/train.py trainer=ddp), and ganlab's DDP
#      strategy against Lightning's on them (benchmarks/ddp_throughput.py, 2+ GPUs)
#   4. the Parzen evaluator against its matmul floor on the GPU (benchmarks/parzen.py)
# then prints one summary. Outputs go to $OUT (default gpu_check_out/).
#
#   bash benchmarks/gpu_check.sh                 # python from PATH
#   PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#   SMOKE=1 bash benchmarks/gpu_check.sh         # the same plumbing on 2 CPU processes, tiny
#
# Not run on the 2-core CPU dev machine where it was written (no GPU there): see
# docs/BENCHMARKS.md for what it printed wherever it has been run.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} WANDB_MODE=offline

if [ "${SMOKE:-0}" = 1 ]; then
    ACC=cpu; NDEV=2; THROUGHPUT="--models toy --steps 200 --warmup 20 --repeat 1"
    DDP="--models toy --steps 40 --warmup 5 --repeat 1"; PARZEN="--n 2000 --repeat 1"
    TESTS=(-k "no_host_sync and alternating and cpu")
else
    ACC=gpu; NDEV=$($PY -c "import torch; print(torch.cuda.device_count())")
    THROUGHPUT="--repeat 5"; DDP="--repeat 3"; PARZEN="--repeat 3"
    TESTS=(-m "slow or not slow" -k "gpu or compile")
    if [ "$NDEV" -lt 1 ]; then
        echo "gpu_check: no CUDA GPU visible; nothing to check (SMOKE=1 tries it on the CPU)"
        exit 1
    fi
    DEVICE=cuda
fi
DEVICE=${DEVICE:-cpu}
declare -A RC

echo "== 1/4 throughput ($ACC)"
$PY benchmarks/train_throughput.py --accelerator "$ACC" $THROUGHPUT >"$OUT/throughput.txt" 2>&1
RC[throughput]=$?

echo "== 2/4 sync count and mixed precision tests"
$PY -m pytest tests/test_sync_free_steps.py tests/test_precision.py tests/test_compile.py -q -p no:cacheprovider -rs "${TESTS[@]}" \
    >"$OUT/tests.txt" 2>&1
RC[tests]=$?

echo "== 3/4 DDP over $NDEV device(s)"
$PY scripts/train.py trainer=ddp trainer.accelerator="$ACC" trainer.devices="$NDEV" \
    data=ring arch=mlp data.n_train=20000 trainer.max_epochs=2 logger=csv \
    callbacks.parzen.n_samples=1000 hydra.run.dir="$OUT/ddp_run" >"$OUT/ddp_run.txt" 2>&1
RC[ddp_run]=$?
if [ "$NDEV" -ge 2 ]; then
    $PY benchmarks/ddp_throughput.py --accelerator "$ACC" --devices "$NDEV" $DDP \
        >"$OUT/ddp_benchmark.txt" 2>&1
    RC[ddp_benchmark]=$?
else
    echo "one GPU: the DDP strategy comparison needs 2 or more" >"$OUT/ddp_benchmark.txt"
    RC[ddp_benchmark]=skipped
fi

echo "== 4/4 Parzen evaluator ($DEVICE)"
$PY benchmarks/parzen.py --device "$DEVICE" $PARZEN >"$OUT/parzen.txt" 2>&1
RC[parzen]=$?

echo
echo "================ gpu_check summary ($(date -u +%Y-%m-%dT%H:%MZ)) ================"
grep -m1 "^machine:" "$OUT/throughput.txt"
$PY -c "import torch; print('GPUs:', [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])"
echo "throughput (exit ${RC[throughput]}):"
grep -E "^ratio |extra time per step" "$OUT/throughput.txt" | sed 's/^/  /'
echo "tests (exit ${RC[tests]}): $(tail -n 1 "$OUT/tests.txt")"
grep -E "^SKIPPED" "$OUT/tests.txt" | sed 's/^/  /'
echo "DDP run over $NDEV device(s) (exit ${RC[ddp_run]}): $(
    cat "$OUT/ddp_run/metrics.json" 2>/dev/null | tr -d '\n ' | cut -c1-200)"
echo "DDP strategies (${RC[ddp_benchmark]}):"
grep -E "steps/s|^ddp speedup" "$OUT/ddp_benchmark.txt" | sed 's/^/  /'
echo "Parzen (exit ${RC[parzen]}):"
grep -E "^(floor|protocol|ratio|result)" "$OUT/parzen.txt" | sed 's/^/  /'
echo "full outputs: $OUT/"
for name in "${!RC[@]}"; do
    case ${RC[$name]} in 0|skipped) ;; *) exit 1 ;; esac
done
