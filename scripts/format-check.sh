#!/bin/sh
# Reports files that clang-format (the version CI installs) would change.
command -v clang-format >/dev/null 2>&1 || { echo "no clang-format: skipped"; exit 77; }
cd "$(dirname "$0")/.." || exit 1
bad=0
for f in include/*.h lib/*.c lib/*.h lib/process/*.c lib/process/*.h lib/mpi/*.c lib/mpi/*.h; do
    if ! clang-format --style=file "$f" | cmp -s - "$f"; then
        echo "needs clang-format: $f"; bad=1
    fi
done
exit $bad
