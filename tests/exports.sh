#!/bin/sh
# Only public names are exported from the shared library (jansson's
# check-exports). Exits 77 (skip) when no shared library was built.
so=$(ls "${top_builddir:-.}"/lib/.libs/libcfutures.so 2>/dev/null | head -n 1)
[ -n "$so" ] || { echo "no shared library: skipped"; exit 77; }
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' |
      grep -v -E '^(future|futures|executor|task|as_completed|completion_queue|thread_pool_executor|process_pool_executor|mpi_pool_executor|cfutures)_|^mpi_pool_serve$' )
if [ -n "$bad" ]; then
    echo "exported but not public:"; echo "$bad"; exit 1
fi
echo "exports ok: $(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/' | wc -l) public symbols"
