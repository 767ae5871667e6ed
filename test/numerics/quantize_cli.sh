#!/bin/sh
# kiln compile --quantize on the command line: kiln inspect names what an
# engine quantizes; refused, naming what: a group size that does not divide
# a projection's input features, an already-quantized checkpoint,
# --group-size without --quantize, bits it does not have, --embed-weights.
#   quantize_cli.sh KILN QUANT_MODELS_DIR
kiln=$1 models=$2 out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
refused() { # MESSAGE ARGS...: kiln compile ARGS fails and says MESSAGE
  want=$1
  shift
  if "$kiln" compile "$@" --quiet -o "$out/e" > "$out/log" 2>&1; then
    echo "FAIL: kiln compile $* succeeded"; exit 1
  fi
  if ! grep -qF -- "$want" "$out/log"; then
    echo "FAIL: kiln compile $* did not say: $want"; cat "$out/log"; exit 1
  fi
  echo "refused: $*: $want"
}
refused "--group-size 48 does not divide the 128 input features of 'model.layers.0.self_attn.q_proj.weight'" \
  "$models/rtn-float" --quantize int4 --group-size 48
refused "already quantized" "$models/gptq-4bit-g32-sym" --quantize int8
refused "--group-size and --quantize-lm-head go with --quantize" "$models/rtn-float" --group-size 64
refused "bad argument '--quantize'" "$models/rtn-float" --quantize int3
refused "does not embed quantized" "$models/rtn-float" --quantize int8 --embed-weights
"$kiln" compile "$models/rtn-float" --quantize int4 --group-size 32 --quiet -o "$out/q.engine" || exit 1
"$kiln" inspect "$out/q.engine" > "$out/inspect" || exit 1
grep -F "quantized     14 weights rounded at load (--quantize) to int4, groups of 32" "$out/inspect" || {
  echo "FAIL: kiln inspect does not name the 14 quantized projections"; cat "$out/inspect"; exit 1; }
"$kiln" compile "$models/rtn-float" --quantize int8 --group-size -1 --quantize-lm-head --quiet -o "$out/q8.engine" || exit 1
"$kiln" inspect "$out/q8.engine" | grep -F "quantized     15 weights rounded at load (--quantize) to int8, a group per row" || {
  echo "FAIL: kiln inspect does not name the 15 quantized weights (with the LM head)"; exit 1; }
