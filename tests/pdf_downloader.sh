#!/usr/bin/env bash
# End-to-end tests of samples/pdf_downloader against loopback servers that
# this script starts and stops: nginx for the good paths, and
# tests/pdfdl_server.py for faults. Every case checks the exit status, the
# message, and the folder's contents byte for byte (hidden files included:
# no temporary file may be left behind).
# Runs on the thread pool, or on the process pool with PDFDL_EXECUTOR=process
# (tests/pdf_downloader_process.sh: a test of its own, so that make -j runs
# the two side by side; most of their time is waiting on timeouts).
# Skips (77) without the program (no libcurl), python3 or nginx.
set -uo pipefail
src=${top_srcdir:-.}
bld=${top_builddir:-.}
prog=$bld/samples/pdf_downloader/pdf_downloader
[ -x "$prog" ] || { echo "no $prog (configure found no libcurl): skipped"; exit 77; }
command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }
# The interpreter itself, once: a pyenv shim first on PATH costs about
# 0.6 s of CPU a start, and this test starts python3 many times.
py=$(python3 -c 'import sys; print(sys.executable)') && [ -x "$py" ] || py=$(command -v python3)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "no nginx: skipped"; exit 77; }
: "${PDFDL_EXECUTOR:=thread}"

W=$(mktemp -d "${TMPDIR:-/tmp}/pdfdl-test.XXXXXX")
fault_pid=
cleanup() {
    [ -n "$fault_pid" ] && kill "$fault_pid" 2>/dev/null && wait "$fault_pid" 2>/dev/null
    bash "$src/scripts/nginx-serve.sh" stop "$W/nginx" || true
    rm -rf "$W"
}
trap cleanup EXIT

# Source files: PDFs of the course's sizes (anchors), two same-named files
# with different bodies, and a small one.
mkdir -p "$W/www/a" "$W/www/b"
mkpdf() { # path size
    { printf '%%PDF-1.4\n'; head -c $(( $2 - 9 )) /dev/urandom; } > "$1"
}
mkpdf "$W/www/f1040.pdf" 184320
mkpdf "$W/www/f1040a.pdf" 102400
mkpdf "$W/www/f1040ez.pdf" 327680
mkpdf "$W/www/f1040es.pdf" 1024000
mkpdf "$W/www/f1040sb.pdf" 573440
mkpdf "$W/www/a/f1040.pdf" 5000
mkpdf "$W/www/b/f1040.pdf" 7000
mkpdf "$W/www/f1040ez.pdf.v2" 327680 # /r/change: the file as changed on the server
for i in $(seq 1 300); do # same-name: 300 URLs, one name, 300 bodies
    mkdir -p "$W/www/same/$i" && mkpdf "$W/www/same/$i/s.pdf" 600
done
chmod -R a+rX "$W/www"

ngport=$(bash "$src/scripts/nginx-serve.sh" start "$W/www" "$W/nginx") || exit 1
NG=http://127.0.0.1:$ngport
"$py" "$src/tests/pdfdl_server.py" "$W/www" > "$W/fault.port" 2>"$W/fault.err" &
fault_pid=$!
. "$src/tests/wait-port.sh"
wait_port "$W/fault.port" "$fault_pid" fault "$W/fault.err" &&
    read -r fport refused < "$W/fault.port" || exit 1
F=http://127.0.0.1:$fport

failures=0 cases=0
bad() { echo "FAIL [$case]: $*"; failures=$((failures + 1)); }

# run CASE ARGS...: runs the downloader into $W/out/CASE; sets rc, out, err.
run() {
    case=$1; shift
    cases=$((cases + 1))
    dir=$W/out/$case
    mkdir -p "$W/out"
    local t0=$(date +%s%N)
    "$prog" --executor "$PDFDL_EXECUTOR" -o "$dir" "$@" >"$W/$case.out" 2>"$W/$case.err"
    rc=$?
    elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    out=$(cat "$W/$case.out") err=$(cat "$W/$case.err")
    # Under sanitizers a report must fail the case even where exit 1 is wanted.
    ! grep -q -E "Sanitizer|runtime error:" "$W/$case.err" || bad "sanitizer report: $err"
}
expect_rc() { [ "$rc" -eq "$1" ] || bad "exit $rc, wanted $1; stderr: $err"; }
expect_err() { grep -qF -- "$1" "$W/$case.err" || bad "stderr lacks '$1': $err"; }
expect_out() { grep -qF -- "$1" "$W/$case.out" || bad "stdout lacks '$1': $out"; }
# expect_files NAME=SOURCE ...: the folder holds exactly these, byte for byte.
expect_files() {
    local want got pair
    want=$(for pair in "$@"; do echo "${pair%%=*}"; done | sort)
    got=$(ls -A "$dir" 2>/dev/null | sort)
    [ "$want" = "$got" ] || bad "folder holds [$(echo $got)], wanted [$(echo $want)]"
    for pair in "$@"; do
        [ -f "$dir/${pair%%=*}" ] || continue
        cmp -s "$dir/${pair%%=*}" "${pair#*=}" || bad "${pair%%=*} differs from ${pair#*=}"
    done
}
hits() { "$py" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode().strip())' "$F/hits/$1"; }

# --- good paths from nginx -------------------------------------------------
run course --base "$NG/"
expect_rc 0
for f in f1040 f1040a f1040ez f1040es f1040sb; do expect_out "Finished downloading $f.pdf"; done
[ "$(grep -c '^Finished downloading' "$W/$case.out")" -eq 5 ] || bad "not 5 Finished lines: $out"
[ "$(wc -l < "$W/$case.out")" -eq 5 ] || bad "stdout is not a terminal: only the 5 lines: $out"
expect_err "5 ok, 0 failed"
expect_files f1040.pdf=$W/www/f1040.pdf f1040a.pdf=$W/www/f1040a.pdf \
    f1040ez.pdf=$W/www/f1040ez.pdf f1040es.pdf=$W/www/f1040es.pdf f1040sb.pdf=$W/www/f1040sb.pdf

run one-worker -j 1 -q "$NG/f1040.pdf" "$NG/f1040a.pdf"
expect_rc 0
[ -z "$out$err" ] || bad "-q printed: $out $err"
expect_files f1040.pdf=$W/www/f1040.pdf f1040a.pdf=$W/www/f1040a.pdf

printf '# forms\n\n  %s  \n# %s\n%s\r\n' "$NG/f1040.pdf" "$NG/f1040a.pdf" "$NG/f1040ez.pdf" > "$W/list.txt"
run input-file -i "$W/list.txt"
expect_rc 0
expect_files f1040.pdf=$W/www/f1040.pdf f1040ez.pdf=$W/www/f1040ez.pdf

cases=$((cases + 1)); case=stdin; dir=$W/out/stdin
echo "$NG/f1040sb.pdf" | "$prog" -q -i - -o "$dir"; rc=$?
expect_rc 0
expect_files f1040sb.pdf=$W/www/f1040sb.pdf

# --- HTTP errors -------------------------------------------------------------
run nginx-404 "$NG/missing.pdf"
expect_rc 1; expect_err "$NG/missing.pdf: HTTP 404 Not Found"; expect_files

run 404-not-retried --retries 3 "$F/status/404/x.pdf"
expect_rc 1; expect_err "$F/status/404/x.pdf: HTTP 404 Not Found"; expect_files
[ "$(hits status/404/x.pdf)" = 1 ] || bad "a 404 was retried"

run 500 --retries 1 "$F/status/500/f1040.pdf"
expect_rc 1; expect_err "HTTP 500 Internal Server Error (after 2 attempts)"; expect_files
[ "$(hits status/500/f1040.pdf)" = 2 ] || bad "500: not 2 requests with --retries 1"

run 503-twice-then-200 "$F/flaky/k1/f1040.pdf"
expect_rc 0; expect_out "Finished downloading f1040.pdf"
expect_files f1040.pdf=$W/www/f1040.pdf
[ "$(hits flaky/k1/f1040.pdf)" = 3 ] || bad "503 twice: not 3 requests"

run 503-no-retries --retries 0 "$F/flaky/k2/f1040.pdf"
expect_rc 1; expect_err "HTTP 503 Service Unavailable"; expect_files

run 429 --retries 1 "$F/status/429/f1040.pdf"
expect_rc 1; expect_err "HTTP 429 Too Many Requests (after 2 attempts)"; expect_files

# --- network failures --------------------------------------------------------
run refused --retries 0 "http://127.0.0.1:$refused/f1040.pdf"
expect_rc 1; expect_err "http://127.0.0.1:$refused/f1040.pdf: connection refused"; expect_files

run cut-at-half --retries 0 "$F/cut/f1040.pdf"
expect_rc 1; expect_err "body cut at 92,160 of 184,320 bytes"; expect_files

# Under 9 s: the default timeout (10 s) would not be; 4 s was not enough at a
# load of 58 (4.5 s, CI beside other builds).
run never-answers --timeout 1 --retries 0 "$F/hang/f1040.pdf"
expect_rc 1; expect_err "$F/hang/f1040.pdf: timed out after 1 s: no answer"; expect_files
[ "$elapsed_ms" -lt 9000 ] || bad "took $elapsed_ms ms with --timeout 1"

run stall-mid-body --timeout 1 --retries 0 "$F/stall/f1040es.pdf"
expect_rc 1; expect_files
expect_err "$F/stall/f1040es.pdf: timed out after 1 s without data, at 512,000 of 1,024,000 bytes"
[ "$elapsed_ms" -lt 9000 ] || bad "took $elapsed_ms ms with --timeout 1"

# Interrupted mid-body: the partial file goes, the exit status says SIGINT.
cases=$((cases + 1)); case=interrupt; dir=$W/out/interrupt
"$prog" --timeout 30 -o "$dir" "$F/stall/f1040sb.pdf" >/dev/null 2>"$W/interrupt.err" &
pid=$!
for _ in $(seq 1 100); do
    ls -A "$dir" 2>/dev/null | grep -q '^\.pdf_downloader-' && break
    sleep 0.05
done
ls -A "$dir" 2>/dev/null | grep -q '^\.pdf_downloader-' || bad "no temporary file while stalled"
kill -INT "$pid"; wait "$pid"; rc=$?; err=$(cat "$W/interrupt.err")
expect_rc 130; expect_err "interrupted: partial downloads removed"; expect_files

# Its output's reader gone (prog | head) while a download stalls: SIGPIPE
# cleans up as SIGTERM does, claims folder included; the status says SIGPIPE.
cases=$((cases + 1)); case=sigpipe; dir=$W/out/sigpipe
mkdir -p "$W/tmp-sigpipe"
TMPDIR=$W/tmp-sigpipe "$py" -c 'import os, subprocess, sys
r, w = os.pipe(); os.close(r)  # a pipe nobody reads
sys.exit(subprocess.run(sys.argv[1:], stdout=w).returncode)' \
    "$prog" --executor "$PDFDL_EXECUTOR" --timeout 30 -o "$dir" \
    "$F/stall/f1040sb.pdf" "$F/slow/f1040.pdf" 2>"$W/sigpipe.err"
rc=$?; err=$(cat "$W/sigpipe.err")
expect_rc 141; expect_err "interrupted: partial downloads removed"
expect_files f1040.pdf=$W/www/f1040.pdf
[ -z "$(ls -A "$W/tmp-sigpipe")" ] || bad "left in TMPDIR: $(ls -A "$W/tmp-sigpipe")"

# Interrupted while its standard error is a full pipe nobody reads (a paused
# pager, a supervisor that does not read), with a download that has its
# headers but no body yet, let through only once the interrupt has removed
# the claims folder. The files go first, and no task creates one after that
# (a .part was left, from a pool thread or process, in about half of the
# interrupted runs of many fast downloads); and it exits within a second
# though its last line cannot be written (it waited for the pipe forever).
cases=$((cases + 1)); case=interrupt-stuck; dir=$W/out/$case
mkdir -p "$W/tmp-stuck"
TMPDIR=$W/tmp-stuck "$py" - "$F" "$W/tmp-stuck" "$prog" --executor "$PDFDL_EXECUTOR" \
    --timeout 30 -o "$dir" "$F/gate/g1/f1040sb.pdf" >"$W/$case.err" 2>&1 <<'PY'
import fcntl, os, signal, subprocess, sys, time, urllib.request
base, tmpdir, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
def until(cond, secs):
    end = time.monotonic() + secs
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True
r, w = os.pipe()  # filled, and never read while the program runs
fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
try:
    while True:
        os.write(w, b"x" * 4096)
except BlockingIOError:
    pass
fcntl.fcntl(w, fcntl.F_SETFL, 0)
p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=w)
os.close(w)
hits = lambda: int(urllib.request.urlopen(base + "/hits/gate/g1/f1040sb.pdf").read())
claims = lambda: [n for n in os.listdir(tmpdir) if n.startswith("pdf_downloader-names-")]
if not until(lambda: hits() >= 1, 20):
    print("the request never came")
p.send_signal(signal.SIGINT)
if not until(lambda: not claims() or p.poll() is not None, 20):
    print("the claims folder stayed")
urllib.request.urlopen(base + "/open/g1").read()  # the body comes now
if not until(lambda: p.poll() is not None, 10):
    print("still running 10 s after SIGINT, standard error full")
os.close(r)  # lets a program stuck on its standard error go on
print("exit", p.wait())
PY
rc=$?; err=$(cat "$W/$case.err")
expect_rc 0; expect_err "exit 130"; expect_files
! grep -q "still running" "$W/$case.err" || bad "$err"
[ -z "$(ls -A "$W/tmp-stuck")" ] || bad "left in TMPDIR: $(ls -A "$W/tmp-stuck")"

printf '# nothing here\n' > "$W/empty.txt"
run empty-list -i "$W/empty.txt"
expect_rc 0; expect_err "nothing to do"; expect_files

# --- names ---------------------------------------------------------------------
run no-extension "$F/noext/f1040"
expect_rc 1; expect_err "$F/noext/f1040: URL does not contain an extension"; expect_files

run query-string "$F/any/f1040.pdf?download=1"
expect_rc 0; expect_out "Finished downloading f1040.pdf"
expect_files f1040.pdf=$W/www/f1040.pdf

run slash-nginx "$NG/"
expect_rc 1; expect_err "HTTP 403 Forbidden"; expect_files

run slash-200 "$F/dir/"
expect_rc 1; expect_err "$F/dir/: URL does not contain an extension"; expect_files

run 302 "$F/redirect/302/f1040.pdf" "$F/go?f=f1040ez.pdf"
expect_rc 0
expect_files f1040.pdf=$W/www/f1040.pdf f1040ez.pdf=$W/www/f1040ez.pdf

run 301-to-404 "$F/redirect/301-404/missing.pdf"
expect_rc 1; expect_err "$F/redirect/301-404/missing.pdf: HTTP 404 Not Found"; expect_files

run hostile "$F/any/%2e%2e%2fevil.pdf" "$F/any/%2e%2e%2f" "$F/any/%2E%2E" "$F/any/.hidden.pdf"
expect_rc 1; expect_err "$F/any/%2e%2e%2f: URL does not contain an extension"
expect_err "$F/any/%2E%2E: URL does not contain an extension"
expect_files ___evil.pdf=$W/www/f1040.pdf _hidden.pdf=$W/www/f1040.pdf
[ "$(ls -A "$W/out" | grep -c evil)" -eq 0 ] || bad "a file escaped the folder"

run collision "$F/files/a/f1040.pdf" "$F/files/b/f1040.pdf"
expect_rc 0
[ "$(grep -c '^Finished downloading f1040\(\.1\)\?\.pdf$' "$W/$case.out")" -eq 2 ] || bad "$out"
if cmp -s "$dir/f1040.pdf" "$W/www/a/f1040.pdf"; then
    expect_files f1040.pdf=$W/www/a/f1040.pdf f1040.1.pdf=$W/www/b/f1040.pdf
else
    expect_files f1040.pdf=$W/www/b/f1040.pdf f1040.1.pdf=$W/www/a/f1040.pdf
fi

# 300 URLs with one name: 300 files, s.pdf and s.1.pdf to s.299.pdf, each
# one of the bodies, none lost. A URL's claim starts where the last claim of
# its name in this process ended: from s.pdf each time, the k-th URL probed
# k names (3,000 URLs: 4.5 million openat() calls, 55 s against 2.5 s for
# distinct names on a 2-CPU VM). With strace, the failed probes are
# counted: 44,850 before, now about one a URL and, on a process pool, one
# a claim of another worker's (each worker knows its own).
for i in $(seq 1 300); do echo "$NG/same/$i/s.pdf"; done > "$W/same.txt"
run same-name -q -j 4 -i "$W/same.txt"
expect_rc 0
want=$( (echo s.pdf; for i in $(seq 1 299); do echo "s.$i.pdf"; done) | sort)
[ "$(ls -A "$dir" | sort)" = "$want" ] || bad "folder holds $(ls -A "$dir" | wc -l) files, not s.pdf to s.299.pdf"
[ "$(cd "$dir" && md5sum -- * | cut -d' ' -f1 | sort)" = \
  "$(md5sum "$W"/www/same/*/s.pdf | cut -d' ' -f1 | sort)" ] ||
    bad "the 300 files are not the 300 bodies, each once"
if strace -f -qq -o /dev/null true 2>/dev/null; then
    case=same-name-probes; cases=$((cases + 1)); dir=$W/out/$case
    # LeakSanitizer cannot run under ptrace (the same-name case ran it).
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        strace -f -qq -e trace=openat -o "$W/$case.strace" \
        "$prog" --executor "$PDFDL_EXECUTOR" -q -j 4 -o "$dir" -i "$W/same.txt" 2>"$W/$case.err"
    rc=$?; err=$(cat "$W/$case.err"); expect_rc 0
    ! grep -q -E "Sanitizer|runtime error:" "$W/$case.err" || bad "sanitizer report: $err"
    [ "$(ls -A "$dir" | wc -l)" -eq 300 ] || bad "$(ls -A "$dir" | wc -l) files, not 300"
    probes=$(grep -c EEXIST "$W/$case.strace")
    [ "$probes" -lt 1500 ] || bad "$probes names probed taken for 300 URLs (1,500 allowed)"
else
    echo "same-name: no working strace, the probes are not counted"
fi

# --- content -----------------------------------------------------------------
run html-as-pdf "$F/html/f1040.pdf"
expect_rc 1; expect_err "not a PDF: the body starts with \"<!DOC\" (Content-Type text/html)"
expect_files

run any-type --any-type "$F/html/page.pdf"
expect_rc 0
printf '<!DOCTYPE html><html><body>Sign in first</body></html>\n' > "$W/page.html"
expect_files page.pdf=$W/page.html

# --- mixed and existing files ------------------------------------------------
run mixed --retries 0 "$NG/f1040a.pdf" "$F/status/404/missing.pdf" "$NG/f1040ez.pdf" \
    "$F/cut/f1040es.pdf" "$F/html/f1040sb.pdf"
expect_rc 1
expect_err "missing.pdf: HTTP 404"; expect_err "cut/f1040es.pdf: body cut at 512,000 of 1,024,000 bytes"
expect_err "html/f1040sb.pdf: not a PDF"; expect_err "2 ok, 3 failed"
expect_files f1040a.pdf=$W/www/f1040a.pdf f1040ez.pdf=$W/www/f1040ez.pdf

printf 'old content\n' > "$W/old.txt"
mkdir -p "$W/out/already-default" && cp "$W/old.txt" "$W/out/already-default/f1040.pdf"
run already-default "$NG/f1040.pdf"
expect_rc 0; expect_files f1040.pdf=$W/www/f1040.pdf

# The resume trap: same size, wrong bytes. A restart, never a resume.
mkdir -p "$W/out/already-same-size"
head -c 184320 /dev/zero > "$W/out/already-same-size/f1040.pdf"
run already-same-size "$NG/f1040.pdf"
expect_rc 0; expect_files f1040.pdf=$W/www/f1040.pdf

mkdir -p "$W/out/already-noclobber" && cp "$W/old.txt" "$W/out/already-noclobber/f1040.pdf"
run already-noclobber --no-clobber "$NG/f1040.pdf" "$NG/f1040a.pdf"
expect_rc 0; expect_out "Kept f1040.pdf: already there (--no-clobber)"
expect_files f1040.pdf=$W/old.txt f1040a.pdf=$W/www/f1040a.pdf

mkdir -p "$W/out/already-failed" && cp "$W/old.txt" "$W/out/already-failed/f1040.pdf"
run already-failed --retries 0 "$F/cut/f1040.pdf"
expect_rc 1; expect_err "body cut"; expect_files f1040.pdf=$W/old.txt

# --- --report ----------------------------------------------------------------
# check_report FILE DIR 'URL-SUFFIX ok status bytes resumed_from retries ERROR-WORDS' ...:
# every line of FILE is one JSON object; each expected URL has one line with
# these values (ERROR-WORDS '-' for null; a substring otherwise), and an ok
# line's file is in DIR with exactly resumed_from + bytes bytes.
check_report() {
    "$py" - "$@" <<'PY' || bad "report: $(cat "$1")"
import json, os, sys
path, folder, wants = sys.argv[1], sys.argv[2], sys.argv[3:]
lines = open(path, encoding="utf-8").read().splitlines()
rows = [json.loads(l) for l in lines]
keys = {"url", "file", "ok", "kept", "status", "bytes", "resumed_from", "partial",
        "seconds", "retries", "error"}
assert all(set(r) == keys for r in rows), rows
assert len(rows) == len(wants), (len(rows), len(wants))
for want in wants:
    suffix, ok, status, nbytes, resumed, retries, error = want.split(" ", 6)
    r = [r for r in rows if r["url"].endswith(suffix)]
    assert len(r) == 1, (suffix, rows)
    r = r[0]
    assert r["ok"] == (ok == "true"), r
    assert r["status"] == (None if status == "null" else int(status)), r
    assert r["bytes"] == int(nbytes) and r["resumed_from"] == int(resumed), r
    assert r["retries"] == int(retries) and r["seconds"] >= 0, r
    assert (r["error"] is None) if error == "-" else error in r["error"], r
    if r["ok"]:
        assert os.path.dirname(r["file"]) == folder, r
        assert os.path.getsize(r["file"]) == r["resumed_from"] + r["bytes"], r
    else:
        assert r["file"] is None, r
PY
}

run report-file --retries 0 --report "$W/report-file.jsonl" "$NG/f1040a.pdf" \
    "$F/status/404/missing.pdf" "$F/cut/f1040es.pdf" "ftp://127.0.0.1/x.pdf" "http://127.0.0.1:$refused/x.pdf"
expect_rc 1; expect_out "Finished downloading f1040a.pdf"; expect_err "1 ok, 4 failed"
expect_files f1040a.pdf=$W/www/f1040a.pdf
check_report "$W/report-file.jsonl" "$dir" "/f1040a.pdf true 200 102400 0 0 -" \
    "/missing.pdf false 404 0 0 0 HTTP 404 Not Found" \
    "/cut/f1040es.pdf false 200 512000 0 0 body cut at 512,000 of 1,024,000 bytes" \
    "ftp://127.0.0.1/x.pdf false null 0 0 0 not an http" \
    "127.0.0.1:$refused/x.pdf false null 0 0 0 connection refused"

# --report -: stdout holds the JSON lines only, the human lines go to stderr.
run report-stdout --report - "$F/flaky/k3/f1040.pdf" "$NG/f1040a.pdf"
expect_rc 0; expect_err "Finished downloading f1040.pdf"; expect_err "2 ok, 0 failed"
check_report "$W/report-stdout.out" "$dir" "/flaky/k3/f1040.pdf true 200 184320 0 2 -" \
    "/f1040a.pdf true 200 102400 0 0 -"

run report-unwritable --report "$W/no/such/dir/r.jsonl" "$NG/f1040a.pdf"
expect_rc 2; expect_err "cannot write the report to $W/no/such/dir/r.jsonl"

# The report is opened (truncated) only once the other checks passed.
echo keep > "$W/report-late.jsonl"
run report-late --report "$W/report-late.jsonl" -o /proc/no/such "$NG/f1040a.pdf"
expect_rc 2; expect_err "cannot use /proc/no/such as the output folder"
[ "$(cat "$W/report-late.jsonl")" = keep ] || bad "the report was truncated"

# Output lost (a full disk) is said, and the exit status is 1.
if [ -w /dev/full ]; then
    run report-full --report /dev/full "$NG/f1040a.pdf"
    expect_rc 1; expect_err "cannot write the report to /dev/full: No space left on device"
    cases=$((cases + 1)); case=stdout-full; dir=$W/out/$case
    "$prog" --executor "$PDFDL_EXECUTOR" -o "$dir" "$NG/f1040a.pdf" >/dev/full 2>"$W/$case.err"
    rc=$?; err=$(cat "$W/$case.err")
    expect_rc 1; expect_err "cannot write to standard output: No space left on device"
fi

# --- -c, --continue ------------------------------------------------------------
# expect_partial BYTES SOURCE: the folder holds exactly one resumable file,
# the first BYTES bytes of SOURCE, and its sidecar; nothing else.
expect_partial() {
    local parts=("$dir"/.pdf_downloader-c-*.part) got
    if [ "${#parts[@]}" -ne 1 ] || [ ! -f "${parts[0]}" ]; then
        bad "not one resumable file: [$(ls -A "$dir" | tr '\n' ' ')]"; return
    fi
    got=$(ls -A "$dir" | sort | tr '\n' ' ')
    [ "$got" = "$(basename "${parts[0]%.part}").meta $(basename "${parts[0]}") " ] ||
        bad "folder holds [$got], wanted a resumable file and its sidecar only"
    [ "$(stat -c %s "${parts[0]}")" -eq "$1" ] ||
        bad "resumable file holds $(stat -c %s "${parts[0]}") bytes, wanted $1"
    cmp -s -n "$1" "${parts[0]}" "$2" || bad "resumable file is not the start of $2"
}
reqs() { "$py" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode(), end="")' "$F/reqs/$1"; }
# no_process_left: no process of this case's run (its folder is on the
# command line) outlives it; a process pool's workers go with their parent.
no_process_left() {
    for _ in $(seq 1 100); do pgrep -f -- "-o $dir" >/dev/null || return 0; sleep 0.05; done
    bad "processes left: $(pgrep -a -f -- "-o $dir")"
}

# Cut, kept, resumed: Range from the byte after the kept ones, If-Range
# with the ETag (preferred to Last-Modified), a 206, the file checked whole.
U=$F/r/etag,lm,cut1/e1/f1040.pdf
run resume-etag -c --retries 0 --report "$W/resume-etag-cut.jsonl" "$U"
expect_rc 1; expect_partial 92160 "$W/www/f1040.pdf"
expect_err "$U: body cut at 92,160 of 184,320 bytes; 92,160 bytes kept to resume with -c"
check_report "$W/resume-etag-cut.jsonl" "$dir" "/e1/f1040.pdf false 200 92160 0 0 body cut at"
grep -q '"partial":92160,' "$W/resume-etag-cut.jsonl" || bad "no partial 92160 in the report"
run resume-etag -c --retries 0 --report "$W/resume-etag.jsonl" "$U"
expect_rc 0; expect_out "Finished downloading f1040.pdf (resumed at 92,160 bytes)"
expect_files f1040.pdf=$W/www/f1040.pdf
check_report "$W/resume-etag.jsonl" "$dir" "/e1/f1040.pdf true 206 92160 92160 0 -"
[ "$(reqs r/etag,lm,cut1/e1/f1040.pdf | sed -n 2p)" = "bytes=92160- \"$(md5sum < "$W/www/f1040.pdf" | cut -c1-16)-v1\"" ] ||
    bad "not Range + If-Range ETag: $(reqs r/etag,lm,cut1/e1/f1040.pdf)"

# Last-Modified only: If-Range carries the date.
U=$F/r/lm,cut1/l1/f1040.pdf
run resume-lastmod -c --retries 0 "$U"
expect_rc 1; expect_partial 92160 "$W/www/f1040.pdf"
run resume-lastmod -c --retries 0 "$U"
expect_rc 0; expect_out "(resumed at 92,160 bytes)"; expect_files f1040.pdf=$W/www/f1040.pdf
[ "$(reqs r/lm,cut1/l1/f1040.pdf | sed -n 2p)" = "bytes=92160- Mon, 01 Jan 2024 00:00:00 GMT" ] ||
    bad "not Range + If-Range date: $(reqs r/lm,cut1/l1/f1040.pdf)"

# Within one run: the retry after a cut resumes.
run resume-retry -c --retries 1 "$F/r/etag,cut1/i1/f1040.pdf"
expect_rc 0; expect_out "Finished downloading f1040.pdf (resumed at 92,160 bytes)"
expect_files f1040.pdf=$W/www/f1040.pdf
[ "$(hits r/etag,cut1/i1/f1040.pdf)" = 2 ] || bad "not 2 requests"

# A server that ignores Range (200): the whole file again, from byte 0.
U=$F/r/etag,cut1,norange/n1/f1040.pdf
run resume-ignored -c --retries 0 "$U"
expect_rc 1; expect_partial 92160 "$W/www/f1040.pdf"
run resume-ignored -c --retries 0 --report "$W/resume-ignored.jsonl" "$U"
expect_rc 0; expect_out "Finished downloading f1040.pdf"; expect_files f1040.pdf=$W/www/f1040.pdf
check_report "$W/resume-ignored.jsonl" "$dir" "/n1/f1040.pdf true 200 184320 0 0 -"
reqs r/etag,cut1,norange/n1/f1040.pdf | sed -n 2p | grep -q '^bytes=92160- ' || bad "no Range asked"

# 416: asked again at once without Range (one restart, not a retry).
U=$F/r/etag,cut1,416/q1/f1040.pdf
run resume-416 -c --retries 0 "$U"
expect_rc 1; expect_partial 92160 "$W/www/f1040.pdf"
run resume-416 -c --retries 0 --report "$W/resume-416.jsonl" "$U"
expect_rc 0; expect_files f1040.pdf=$W/www/f1040.pdf
check_report "$W/resume-416.jsonl" "$dir" "/q1/f1040.pdf true 200 184320 0 1 -"
[ "$(reqs r/etag,cut1,416/q1/f1040.pdf | cut -d' ' -f1 | tr '\n' ' ')" = "- bytes=92160- - " ] ||
    bad "not plain, Range, plain: $(reqs r/etag,cut1,416/q1/f1040.pdf)"

# The file changed on the server: If-Range fails, the new file comes whole.
U=$F/r/etag,lm,cut1,change/c1/f1040ez.pdf
run resume-changed -c --retries 0 "$U"
expect_rc 1; expect_partial 163840 "$W/www/f1040ez.pdf"
run resume-changed -c --retries 0 --report "$W/resume-changed.jsonl" "$U"
expect_rc 0; expect_files f1040ez.pdf=$W/www/f1040ez.pdf.v2
check_report "$W/resume-changed.jsonl" "$dir" "/c1/f1040ez.pdf true 200 327680 0 0 -"

# No validator (no ETag, no Last-Modified): nothing can be resumed safely.
run resume-no-validator -c --retries 0 "$F/r/cut1/v1/f1040.pdf"
expect_rc 1; expect_err "body cut at 92,160 of 184,320 bytes"; expect_files
! grep -q "kept to resume" "$W/$case.err" || bad "kept without a validator"

# Without -c nothing partial is left, validators or not; a 404 keeps nothing either.
run resume-without-c --retries 0 "$F/r/etag,lm,cut1/w1/f1040.pdf"
expect_rc 1; expect_files
run resume-404 -c --retries 0 "$F/r/etag/x1/missing.pdf"
expect_rc 1; expect_err "HTTP 404 Not Found"; expect_files

# One URL twice with -c: one task resumes, the other uses a file of its own.
run resume-twice -c "$F/r/etag/d1/f1040.pdf" "$F/r/etag/d1/f1040.pdf"
expect_rc 0; expect_files f1040.pdf=$W/www/f1040.pdf f1040.1.pdf=$W/www/f1040.pdf

# Ctrl-C mid-body. interrupt_at CASE ARGS...: starts the download of a
# /r/...,stall1 URL, waits (up to 20 s) until half its body is on disk, sends
# SIGINT and waits for the exit; sets rc and err.
interrupt_at() {
    case=$1; shift; cases=$((cases + 1)); dir=$W/out/$case
    "$prog" --executor "$PDFDL_EXECUTOR" --timeout 60 -o "$dir" "$@" >/dev/null 2>"$W/$case.err" &
    local pid=$! f
    for _ in $(seq 1 400); do
        for f in "$dir"/.pdf_downloader-*.part; do
            [ -f "$f" ] && [ "$(stat -c %s "$f")" -eq 286720 ] && break 2
        done
        sleep 0.05
    done
    kill -INT "$pid"; wait "$pid"; rc=$?; err=$(cat "$W/$case.err")
    ! grep -q -E "Sanitizer|runtime error:" "$W/$case.err" || bad "sanitizer report: $err"
    no_process_left
}
U=$F/r/etag,lm,stall1/s1/f1040sb.pdf
interrupt_at interrupt-c -c "$U"
expect_rc 130; expect_partial 286720 "$W/www/f1040sb.pdf"
expect_err "kept 286,720 bytes of $U in $dir/.pdf_downloader-c-"
expect_err "interrupted: 1 partial download kept; run again with -c to resume"
run interrupt-c -c "$U"
expect_rc 0; expect_out "Finished downloading f1040sb.pdf (resumed at 286,720 bytes)"
expect_files f1040sb.pdf=$W/www/f1040sb.pdf

interrupt_at interrupt-no-c "$F/r/etag,lm,stall1/s2/f1040sb.pdf"
expect_rc 130; expect_err "interrupted: partial downloads removed"; expect_files

# --- usage ----------------------------------------------------------------------
run usage-jobs -j 0 "$NG/f1040.pdf"; expect_rc 2; expect_err "-j wants"
run usage-executor --executor fibers "$NG/f1040.pdf"; expect_rc 2
run usage-option --frobnicate; expect_rc 2
run usage-timeout --timeout -1 "$NG/f1040.pdf"; expect_rc 2
# -o '': make_dirs read past the name's NUL (uninitialised bytes: valgrind).
cases=$((cases + 1)); case=usage-empty-output; dir=$W/out/$case
"$prog" -o '' "$NG/f1040.pdf" >/dev/null 2>"$W/$case.err"; rc=$?; err=$(cat "$W/$case.err")
expect_rc 2; expect_err "-o wants a folder name, not ''"
run help --help; expect_rc 0; expect_out "Usage: pdf_downloader"
run version --version; expect_rc 0; expect_out "pdf_downloader"
if ! grep -q process_pool_executor_new "$src/include/cfutures.h"; then
    "$prog" --executor process "$NG/f1040.pdf" >/dev/null 2>"$W/pp.err"; rc=$?; case=process-absent
    [ "$rc" -eq 2 ] && grep -q "no process pool" "$W/pp.err" || bad "--executor process: exit $rc"
fi

echo "pdf_downloader ($PDFDL_EXECUTOR pool): $cases cases, $failures failures"
[ "$failures" -eq 0 ]
