#!/usr/bin/env bash
# The course's thread, lock, timer, asyncio and word-count samples, run and
# checked: deterministic lines exactly, timing-dependent ones by shape
# (every line there, each in a possible order). No network.
set -uo pipefail
src=${top_srcdir:-.}
bld=${top_builddir:-.}
S=$bld/samples/course
S_abs=$(cd "$S" 2>/dev/null && pwd) || { echo "no $S: build first"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/course-threads.XXXXXX")
trap 'rm -rf "$W"' EXIT

failures=0 cases=0
bad() { echo "FAIL [$case]: $*"; failures=$((failures + 1)); }
# run CASE PROG ARGS...: stdout in $W/CASE.out, stderr in $W/CASE.err, rc.
run() {
    case=$1; shift
    cases=$((cases + 1))
    "$@" >"$W/$case.out" 2>"$W/$case.err" </dev/null
    rc=$?
    out=$(cat "$W/$case.out")
    ! grep -q -E "Sanitizer|runtime error:" "$W/$case.err" || bad "sanitizer: $(cat "$W/$case.err")"
}
expect_rc() { [ "$rc" -eq "$1" ] || bad "exit $rc, wanted $1: $(cat "$W/$case.err")"; }
expect_out() { [ "$out" = "$1" ] || bad "stdout:
$out
wanted:
$1"; }
# expect_sorted LINES: stdout holds these lines, in any order.
expect_sorted() { [ "$(sort <<<"$out")" = "$(sort <<<"$1")" ] || bad "lines:
$out
wanted, in any order:
$1"; }
# line_no TEXT: the first line of stdout equal to TEXT (0 if none).
line_no() { grep -n -x -F -- "$1" "$W/$case.out" | head -n 1 | cut -d: -f1 || true; }
# before A B: line A comes before line B.
before() {
    local a b
    a=$(line_no "$1") b=$(line_no "$2")
    [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ] || bad "'$1' not before '$2':
$out"
}
last_line() { [ "$(tail -n 1 "$W/$case.out")" = "$1" ] || bad "last line is not '$1': $out"; }

hellos=$(printf '%s Hello!\n' 0 1 2 3 4)

# --- threads_basics ------------------------------------------------------------
run serial "$S/threads_basics" serial; expect_rc 0
expect_out "$(printf 'Hello!\n%.0s' 1 2 3 4 5)"
run threads "$S/threads_basics" threads; expect_rc 0
expect_out "$(printf 'Hello!\n%.0s' 1 2 3 4 5)"
run hello-n "$S/threads_basics" hello-n; expect_rc 0; expect_sorted "$hellos"
run hello-goodbye "$S/threads_basics" hello-goodbye; expect_rc 0
expect_sorted "$hellos
$(printf '%s Goodbye!\n' 0 1 2 3 4)"
run sleep-wait "$S/threads_basics" sleep-wait; expect_rc 0
expect_sorted "$hellos
*** DONE! ***"
last_line "*** DONE! ***"
run join-each "$S/threads_basics" join-each; expect_rc 0
expect_out "$hellos
*** DONE! ***"
run join-all "$S/threads_basics" join-all; expect_rc 0
expect_sorted "$hellos
$(printf '\tNow joining hello-%s\n' 0 1 2 3 4)
*** DONE! ***"
for i in 0 1 2 3; do
    before "	Now joining hello-$i" "	Now joining hello-$((i + 1))"
    before "$i Hello!" "	Now joining hello-$((i + 1))"
done
last_line "*** DONE! ***"
run join-timeout "$S/threads_basics" join-timeout; expect_rc 0
expect_sorted "$hellos
$(printf '\tRemoved hello-%s\n' 0 1 2 3 4)
*** DONE! ***"
for i in 0 1 2 3 4; do before "$i Hello!" "	Removed hello-$i"; done
last_line "*** DONE! ***"
run worker "$S/threads_basics" worker; expect_rc 0
expect_sorted "$(printf 'Thread %s started.\n' 0 1 2 3 4)
$(printf 'Thread %s finished.\n' 0 1 2 3 4)
All threads completed."
for i in 0 1 2 3 4; do before "Thread $i started." "Thread $i finished."; done
last_line "All threads completed."
run do-some-work "$S/threads_basics" do-some-work; expect_rc 0
expect_out "doing some work in thread
echo: text
Done"
run fibonacci "$S/threads_basics" fibonacci; expect_rc 0; expect_out "34
144"
run all-programs "$S/threads_basics"; expect_rc 0
[ "$(grep -c '^== ' "$W/$case.out")" -eq 11 ] || bad "not 11 programs: $out"
run unknown "$S/threads_basics" nosuch; expect_rc 2

# --- input_reader ----------------------------------------------------------------
case=input-reader; cases=$((cases + 1))
echo "will is cool" | "$S/input_reader" >"$W/$case.out" 2>"$W/$case.err"; rc=$?
out=$(cat "$W/$case.out")
expect_rc 0
[ "$(sed -n 1p <<<"$out")" = "Enter any text and press enter: " ] || bad "prompt: $out"
[ "$(sed -n 3p <<<"$out")" = "while you typed 'will is cool'" ] || bad "echo: $out"
read -r n1 n2 sq < <(sed -n 2p <<<"$out" |
    sed -n -E 's/^calculated squares up to ([0-9]+) \* ([0-9]+) = ([0-9]+)$/\1 \2 \3/p')
# result is the square of count - 1: count went up once more after it;
# or, when the line was read before the loop's first turn, 1 * 1 = 1.
[ -n "${sq:-}" ] && [ "$n1" = "$n2" ] &&
    { [ "$sq" -eq $(( (n1 - 1) * (n1 - 1) )) ] || [ "$n1.$sq" = "1.1" ]; } ||
    bad "squares line: $out"
run input-eof "$S/input_reader"; expect_rc 1
grep -q "EOF when reading a line" "$W/$case.err" || bad "no EOF message"

# --- every_so_often -----------------------------------------------------------------
run every-so-often "$S/every_so_often" 0.005; expect_rc 0
grep -v -x -q 'Do the thing you want to every so often' "$W/$case.out" || bad "no output"
# The timer lines fall anywhere; without them the lines are the course's.
[ "$(grep -v -x 'Do the thing you want to every so often' "$W/$case.out")" = \
  "$(printf 'multiplied up to %s\n' 0 10000000 20000000 30000000 40000000 50000000 \
        60000000 70000000 80000000 90000000)" ] || bad "multiplied lines: $out"
run timer-usage "$S/every_so_often" -1; expect_rc 2

# --- bank_account and counter --------------------------------------------------------
run bank-account "$S/bank_account"; expect_rc 0
[ "$(grep -c '^Deposit: 500, New Balance: ' "$W/$case.out")" -eq 5 ] &&
[ "$(grep -c '^Withdrawal: 200, New Balance: ' "$W/$case.out")" -eq 5 ] &&
[ "$(wc -l <"$W/$case.out")" -eq 10 ] || bad "not 5 deposits and 5 withdrawals: $out"
# Each line's balance follows from the one before: no update was lost.
awk -F'[:,] *' 'BEGIN { b = 1000 }
    { b += ($1 == "Deposit" ? $2 : -$2); if ($4 != b) { print "line " NR ": " $0; exit 1 } }
    END { if (b != 2500) exit 1 }' "$W/$case.out" || bad "balances do not add up: $out"
run counter "$S/counter"; expect_rc 0; expect_out "Final count: 500000"

# --- asyncio_port --------------------------------------------------------------------
# The tasks start in the event loop's order (each waits for its turn), so the
# start-up lines are exact; the rest follow the sleeps.
fetching=$(printf 'Fetching data from https://example.%s\n' com org net)
run asyncio-two "$S/asyncio_port" two; expect_rc 0
expect_out "coroutine_1 is active on the event loop
coroutine_1 yielding control. Going to be blocked for 4 seconds
coroutine_2 is active on the event loop
coroutine_2 yielding control. Going to be blocked for 5 seconds
coroutine_1 resumed. coroutine_1 exiting
coroutine_2 resumed. coroutine_2 exiting
[None, None]"
run asyncio-five "$S/asyncio_port" -s 7 five; expect_rc 0
[ "$(head -n 7 "$W/$case.out" | sed -E 's/^([0-4] sleeps for) [0-4]\.[0-9]{2} seconds$/\1/')" = \
    "$(printf '%s\n' 'Creating five tasks' 'Sleeping after starting five tasks' \
        '0 sleeps for' '1 sleeps for' '2 sleeps for' '3 sleeps for' '4 sleeps for')" ] ||
    bad "start order: $out"
last_line "Done five tasks"
before "Sleeping after starting five tasks" "Waking and waiting for five tasks"
for i in 0 1 2 3 4; do
    s=$(grep -E "^$i sleeps for [0-4]\.[0-9]{2} seconds$" "$W/$case.out") ||
        { bad "no '$i sleeps for' line: $out"; continue; }
    before "$s" "$i awakens"
    before "$i awakens" "Done five tasks"
done
[ "$(wc -l <"$W/$case.out")" -eq 14 ] || bad "not 14 lines: $out"
run asyncio-gather "$S/asyncio_port" gather; expect_rc 0
expect_out "$fetching
$(printf 'Data from https://example.%s\n' com org net)"
run asyncio-as-completed "$S/asyncio_port" as-completed; expect_rc 0
expect_out "$fetching
$(printf 'Data from https://example.%s\n' org net com)"

# --- word_count ----------------------------------------------------------------------
# Three log files of about 2 MB; the expected counts come from Python's own
# content.lower().count(word.lower()).
if command -v python3 >/dev/null; then
    python3 - "$W" <<'PY'
import random, sys
r = random.Random(5)
words = ["info", "Error", "ERROR", "error", "errorerror", "warn", "errors", "err", "or"]
for k in range(3):
    with open("%s/log%d.txt" % (sys.argv[1], k), "w") as f:
        for _ in range(120000 + 50000 * k):
            f.write(" ".join(r.choice(words) for _ in range(3)) + "\n")
PY
    want=$(cd "$W" && python3 -c '
import sys
w = sys.argv[1]
for p in sys.argv[2:]:
    print("File: %s, Count: %d" % (p, open(p).read().lower().count(w.lower())))' error log0.txt log1.txt log2.txt)
    case=word-count; cases=$((cases + 1))
    (cd "$W" && "$S_abs/word_count" log0.txt log1.txt log2.txt) >"$W/$case.out" 2>"$W/$case.err" ||
        bad "exit $?: $(cat "$W/$case.err")"
    out=$(cat "$W/$case.out"); expect_out "$want"
    want=$(cd "$W" && python3 -c '
import sys
w = sys.argv[1]
for p in sys.argv[2:]:
    print("File: %s, Count: %d" % (p, open(p).read().lower().count(w.lower())))' RorE log0.txt log2.txt)
    case=word-count-word; cases=$((cases + 1))
    (cd "$W" && "$S_abs/word_count" -w RorE -j 1 log0.txt log2.txt) >"$W/$case.out" 2>&1 ||
        bad "exit $?"
    out=$(cat "$W/$case.out"); expect_out "$want"
fi
run word-count-missing "$S/word_count" "$W/no-such-file"; expect_rc 1
grep -q "no-such-file" "$W/$case.err" || bad "no message for a missing file"
run word-count-usage "$S/word_count"; expect_rc 2

# --- every course sample's arguments ------------------------------------------
# --help: the usage on stdout, exit 0, nothing run; an unknown option or a
# malformed number: what is wrong and the usage on stderr, exit 2, nothing
# run (stdin is /dev/null: a sample that reads it would end, not hang).
for prog in asyncio_port bank_account counter every_so_often fetch_urls input_reader \
    mp_pool much_cpu prime_factor queue_rw rest_users temp_getter threads_basics \
    thumbnail_maker word_count; do
    [ -x "$S/$prog" ] || continue # built only with its library (curl, vips, sqlite)
    run "$prog-help" "$S/$prog" --help; expect_rc 0
    [ "${out%%:*}" = usage ] || bad "--help printed no usage: $out"
    run "$prog-bad-option" "$S/$prog" --no-such-option; expect_rc 2
    grep -q -e "usage: " -e "--help" "$W/$case.err" ||
        bad "no usage on stderr: $(cat "$W/$case.err")"
    [ -z "$out" ] || bad "it ran: $out"
done
while read -r prog args; do
    [ -x "$S/$prog" ] || continue
    # shellcheck disable=SC2086 # the arguments split on purpose
    run "$prog-bad-value" "$S/$prog" $args; expect_rc 2
    grep -q "usage: " "$W/$case.err" || bad "no usage on stderr: $(cat "$W/$case.err")"
    [ -z "$out" ] || bad "it ran: $out"
done <<'EOF'
much_cpu -e thread -n abc
much_cpu -e nosuchpool
prime_factor -e nosuchpool -n 3
prime_factor -s 12x
word_count -j abc /dev/null
word_count -j 99999999999 /dev/null
rest_users -j -1 http://127.0.0.1:1 db 3
rest_users http://127.0.0.1:1 db 12x
thumbnail_maker -n 100 --generate dir
every_so_often 1x
asyncio_port -s zz
fetch_urls -e nosuchpool http://127.0.0.1:1/
mp_pool -e nosuchpool
EOF

echo "course samples (threads): $cases cases, $failures failures"
[ "$failures" -eq 0 ]
