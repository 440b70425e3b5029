#!/usr/bin/env bash
# The clang static analyzer over the plain build: the library and the samples
# (issue 12, item 11); with SCAN_ALL=1 also the test programs, the test-hook
# build of the library and the bench program. Configures a fresh build-scan/
# with clang and builds under scan-build (Debian clang-tools; installed here
# if missing), and exits non-zero if the analyzer reports anything, printing
# one line per report. The HTML reports stay in build-scan/reports/ for a
# closer look.
#   bash scripts/scan-build.sh            build dir build-scan
#   SCAN_DIR=/tmp/x bash scripts/scan-build.sh
#   SCAN_ALL=1 bash scripts/scan-build.sh  tests and bench too (twice the time)
# CI runs the default: on 2 vCPUs the tests, the bench and the library's
# second (test-hook) build took 190 of the analyzer's 340 s of CPU, and the
# tests run under ASan, TSan and valgrind besides. The default took 182
# CPU-seconds here (Dec 2026), 144 without configure under the analyzer,
# the manual and the test-hook build.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
command -v scan-build >/dev/null 2>&1 || bash scripts/setup.sh clang clang-tools python3
command -v python3 >/dev/null 2>&1 || bash scripts/setup.sh python3
command -v scan-build >/dev/null 2>&1 || { echo "scan-build: not found (Debian clang-tools)" >&2; exit 2; }
bash scripts/autogen.sh
dir=${SCAN_DIR:-$top/build-scan}
reports=$dir/reports
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
# Plain -O0 -g, shared only (libtool would compile every file twice for a
# static library too). --enable-werror stays off: clang's warnings are not
# gcc's. Configured with plain clang, not under scan-build: `scan-build make`
# passes make CC=ccc-analyzer itself, and configure's few hundred test
# compiles, each through the analyzer's wrapper, took 46 of the stage's 182
# CPU-seconds on 2 vCPUs.
CC=clang "$top/configure" -q --disable-static CFLAGS="-O0 -g" >/dev/null
# The library and every program make builds, not "all": that also builds the
# manual (doxygen, help2man; nothing to analyze) and the library's test-hook
# build (the same files, and the hooks). With SCAN_ALL, also the test
# programs (make check with no TESTS builds check_PROGRAMS and runs nothing)
# and the bench program. Each step is analyzed even when an earlier one
# reported; --status-bugs makes a report a failure.
# shellcheck disable=SC2016 # $(...) are make's
progs=$(printf 'p:\n\t@echo $(bin_PROGRAMS) $(noinst_PROGRAMS)\n' |
    make -s --no-print-directory -f Makefile -f - p)
status=0
goals=("lib/libcfutures.la $progs")
if [ -n "${SCAN_ALL:-}" ]; then
    goals+=("check TESTS=" bench/bench_cfutures)
fi
for goal in "${goals[@]}"; do
    # shellcheck disable=SC2086 # goal is a list of words on purpose
    scan-build --use-cc=clang -o "$reports" -plist-html --status-bugs \
        make -j"$(nproc)" $goal >>"$dir/scan.log" 2>&1 || status=1
done
if grep -q '^make.*\*\*\*' "$dir/scan.log"; then
    echo "scan-build: the build failed (see $dir/scan.log):" >&2
    grep -B 5 '^make.*\*\*\*' "$dir/scan.log" | tail -n 30 >&2
    exit 2
fi

# One line a report, from the plist scan-build writes beside each page:
# file:line: checker: description (function).
python3 - "$reports" "$top" "$dir" <<'PY' | sort -u
import glob, os, plistlib, sys
reports, top, build = sys.argv[1:4]
for path in glob.glob(os.path.join(reports, "*", "*.plist")):
    with open(path, "rb") as fp:
        doc = plistlib.load(fp)
    for d in doc.get("diagnostics", []):
        loc = d["location"]
        name = os.path.relpath(os.path.join(build, doc["files"][loc["file"]]), top)
        func = d.get("issue_context", "?")
        print(f"{name}:{loc['line']}: {d.get('check_name', d.get('type'))}: "
              f"{d['description']} (in {func})")
PY
n=$(find "$reports" -name 'report-*.html' | wc -l)
if [ "$n" -ne 0 ] || [ "$status" -ne 0 ]; then
    echo "scan-build: $n report(s); HTML in $reports"
    exit 1
fi
echo "scan-build: no reports"
