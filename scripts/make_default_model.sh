#!/usr/bin/env bash
# Regenerate the coefficient file shipped in the package from the public ML.ENERGY data.
# usage: scripts/make_default_model.sh [DATA_DIR]   (default: $ENERGYLENS_DATA or ../shared/data)
set -euo pipefail
DATA="${1:-${ENERGYLENS_DATA:-../shared/data}}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
energylens data import mlenergy-v3 "$DATA/mlenergy-v3" -o "$TMP/mlenergy-v3.csv"
energylens data import mlenergy-v2 "$DATA/mlenergy-v2" -o "$TMP/mlenergy-v2.csv"
energylens fit "$TMP/mlenergy-v3.csv" "$TMP/mlenergy-v2.csv" --seed 0 -o src/energylens/model/defaults/default.json \
  --note "fitted on every row of ML.ENERGY v3 (838) and v2 (356); regenerate with scripts/make_default_model.sh ../shared/data"
python - <<'PY'
import json
p = "src/energylens/model/defaults/default.json"
d = json.load(open(p))
print("default model:", d["provenance"]["rows"], "rows,", d["provenance"]["train_metrics"])
PY
