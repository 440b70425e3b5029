#!/bin/sh
# make fuzz: builds each libFuzzer target with clang and runs it for
# FUZZ_SECONDS on its seed corpus (tests/fuzz/corpus/NAME, read only) plus a
# working corpus in the build tree (tests/fuzz/work/NAME, where new inputs go).
# Prints one line per target: executions, seconds, executions/s, crashes.
#
# Usage: run.sh SECONDS NAME:SRC[,SRC...] ...   (from the top build folder)
# Environment: srcdir (top source folder), FUZZ_CC (clang), FUZZ_CFLAGS,
# FUZZ_LIBS (flags and libraries the targets link with: libcurl's for names).
# Exits 77 (skip) when FUZZ_CC cannot link -fsanitize=fuzzer; 1 on a crash.
set -eu
seconds=$1
shift
srcdir=${srcdir:-.}
cc=${FUZZ_CC:-clang}
flags=${FUZZ_CFLAGS:-"-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"}
mkdir -p tests/fuzz

probe=tests/fuzz/probe
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' \
    >"$probe.c"
if ! $cc $flags "$probe.c" -o "$probe" >/dev/null 2>&1; then
    echo "fuzz: SKIP: '$cc $flags' cannot build a libFuzzer target (apt-get install clang)"
    rm -f "$probe" "$probe.c"
    exit 77
fi
rm -f "$probe" "$probe.c"

# Builds every target, then runs them all at once (each is one process on
# one core), then reports each in the order given. NAME is an identifier.
for spec in "$@"; do
    name=${spec%%:*}
    srcs=$(echo "${spec#*:}" | tr ',' ' ')
    files="$srcdir/tests/fuzz/fuzz_$name.c"
    incs="-I. -I$srcdir/include -I$srcdir/lib"
    for s in $srcs; do
        files="$files $srcdir/$s"
        incs="$incs -I$srcdir/$(dirname "$s")"
    done
    bin=tests/fuzz/fuzz_$name
    # shellcheck disable=SC2086
    $cc $flags -DHAVE_CONFIG_H $incs $files -o "$bin" -lpthread ${FUZZ_LIBS:-}
done
for spec in "$@"; do
    name=${spec%%:*}
    work=tests/fuzz/work/$name
    mkdir -p "$work"
    "tests/fuzz/fuzz_$name" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -artifact_prefix="tests/fuzz/crash-$name-" "$work" "$srcdir/tests/fuzz/corpus/$name" \
        >"tests/fuzz/fuzz_$name.log" 2>&1 &
    eval "pid_$name=\$!"
done

status=0
for spec in "$@"; do
    name=${spec%%:*}
    work=tests/fuzz/work/$name
    log=tests/fuzz/fuzz_$name.log
    if eval "wait \$pid_$name"; then
        crashes=0
    else
        crashes=1
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    runs=${runs:-0}
    corpus="corpus $(ls "$work" | wc -l) new + $(ls "$srcdir/tests/fuzz/corpus/$name" | wc -l) seeds"
    if [ "$crashes" -eq 0 ]; then
        secs=${secs:-$seconds}
        [ "$secs" -gt 0 ] || secs=1
        echo "fuzz_$name: $runs executions in $secs s ($((runs / secs))/s), 0 crashes, $corpus"
    else
        # libFuzzer stops at the first crash and prints no "Done" line.
        echo "fuzz_$name: CRASH after $runs executions, $corpus"
        tail -n 40 "$log"
        echo "fuzz_$name: crash input saved as tests/fuzz/crash-$name-*;" \
            "replay it with tests/fuzz/replay_$name FILE"
    fi
done
exit $status
