#!/bin/sh
# Prints the names libcfutures.so exports, one a line: every function the
# public header declares with CF_API, and nothing else. libtool's
# -export-symbols turns this list into the linker's version script
# ({ global: ...; local: *; }), so a function another change adds to the
# header is exported with no list to edit, and an internal function never is.
#   abi/exports.sh include/cfutures.h > lib/libcfutures.sym
# The MPI pool's functions exist only in a library configured --with-mpi:
# CF_WITH_MPI=yes (set by abi/local.mk) keeps them.
#   CF_WITH_MPI=yes abi/exports.sh include/cfutures.h
grep -E '^CF_API' "${1:?usage: exports.sh HEADER}" |
    sed -E 's/\(.*//; s/.*[ *]([A-Za-z_][A-Za-z0-9_]*)$/\1/' |
    if [ "${CF_WITH_MPI:-no}" = yes ]; then cat; else sed '/^mpi_pool_/d'; fi |
    LC_ALL=C sort -u
