#!/bin/sh
# bench/promote.sh [GENERATED]: makes one `make bench` run the committed
# record. Replaces the block between the "make bench" markers of
# bench/RESULTS.md with the same block of GENERATED (default
# bench/results/RESULTS-generated.md); every line outside the markers (the
# hand-written notes) is kept. Refuses a QUICK run unless FORCE=1. Commit
# the result yourself, with a note under the tables on what changed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gen=${1:-$here/results/RESULTS-generated.md}
md=$here/RESULTS.md
[ -f "$gen" ] || { echo "promote: $gen not found: run 'make bench' first" >&2; exit 2; }
if grep -q 'QUICK run' "$gen" && [ "${FORCE:-0}" != 1 ]; then
    echo "promote: $gen is from a QUICK run (indicative only); FORCE=1 to promote it anyway" >&2
    exit 2
fi
python3 - "$gen" "$md" <<'PY'
import sys
gen_path, md_path = sys.argv[1], sys.argv[2]
BEGIN = "<!-- make bench: begin"
END = "<!-- make bench: end -->"


def block(text, what):
    b, e = text.find(BEGIN), text.find(END)
    if b < 0 or e < b:
        sys.exit(f"promote: no make bench markers in {what}")
    return b, e + len(END)


new = open(gen_path).read()
b, e = block(new, gen_path)
old = open(md_path).read()
ob, oe = block(old, md_path)
with open(md_path, "w") as fp:
    fp.write(old[:ob] + new[b:e] + old[oe:])
print(f"promote: {md_path} now holds the tables of {gen_path}")
PY
