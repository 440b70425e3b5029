#!/bin/sh
# The public header declares every name of DESIGN.md with its signature
# (../shared/tools/api-names.c). Skips (77) where that file is not beside us.
src=${top_srcdir:-.}
api=$src/../shared/tools/api-names.c
[ -f "$api" ] || { echo "no $api: skipped"; exit 77; }
pp=
grep -q process_pool_executor_new "$src/include/cfutures.h" && pp=-DWITH_PROCESS_POOL
co=
grep -q future_then "$src/include/cfutures.h" && co=-DWITH_COMPOSE
ctl=
grep -q executor_set_max_workers "$src/include/cfutures.h" && ctl=-DWITH_CONTROL
mpi=
b=${top_builddir:-.}
grep -q mpi_pool_serve "$src/include/cfutures.h" &&
    grep -q '^#define HAVE_MPI 1' "$b/config.h" 2>/dev/null && mpi=-DWITH_MPI
${CC:-cc} -std=gnu11 -fsyntax-only -Werror=incompatible-pointer-types \
    -Werror=implicit-function-declaration $pp $co $ctl $mpi -I"$src/include" "$api"
