#!/usr/bin/env bash
# Prints the log of every failed test under build folder $1.
dir=${1:-build}
for trs in $(find "$dir" -name '*.trs' 2>/dev/null); do
    if grep -q -E '^:test-result: (FAIL|ERROR)' "$trs"; then
        log=${trs%.trs}.log
        echo "==== $log"; tail -n 60 "$log"
    fi
done
