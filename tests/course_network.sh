#!/usr/bin/env bash
# The course's network samples (fetch_urls, temp_getter, rest_users,
# thumbnail_maker) against tests/course_server.py, which this script starts
# on a free loopback port and stops after. Never the internet.
# A sample whose library configure did not find is skipped; with none of
# them built (no libcurl), or without python3, the whole test skips (77).
set -uo pipefail
src=${top_srcdir:-.}
bld=${top_builddir:-.}
S=$bld/samples/course
command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }
# The interpreter itself, once: a pyenv shim first on PATH costs about
# 0.6 s of CPU a start, and this test starts python3 many times.
py=$(python3 -c 'import sys; print(sys.executable)') && [ -x "$py" ] || py=$(command -v python3)
[ -x "$S/fetch_urls" ] || { echo "no $S/fetch_urls (configure found no libcurl): skipped"; exit 77; }

W=$(mktemp -d "${TMPDIR:-/tmp}/course-net.XXXXXX")
servers=()
cleanup() {
    for p in "${servers[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT

# serve NAME ARGS...: starts course_server.py; sets $port. Waits up to 60 s
# for its port, by the clock (a CI run's 400 sleeps of 0.05 s ran out on
# a loaded machine once, the server's log empty): a server that exits
# first is named with its status, one still starting with the time waited.
. "$src/tests/wait-port.sh"
serve() {
    local name=$1 pid; shift
    "$py" "$src/tests/course_server.py" "$@" >"$W/$name.port" 2>"$W/$name.log" &
    pid=$!
    servers+=($pid)
    wait_port "$W/$name.port" "$pid" "$name" "$W/$name.log" && read -r port <"$W/$name.port" ||
        exit 1
}

failures=0 cases=0 skipped=""
bad() { echo "FAIL [$case]: $*"; failures=$((failures + 1)); }
run() {
    case=$1; shift
    cases=$((cases + 1))
    "$@" >"$W/$case.out" 2>"$W/$case.err" </dev/null
    rc=$?
    out=$(cat "$W/$case.out")
    ! grep -q -E "Sanitizer|runtime error:" "$W/$case.err" || bad "sanitizer: $(cat "$W/$case.err")"
}
expect_rc() { [ "$rc" -eq "$1" ] || bad "exit $rc, wanted $1: $(cat "$W/$case.err")"; }
shape() { sed -E 's/[0-9]+\.[0-9]+ (s|seconds)/T \1/g' "$W/$case.out"; }

have_pp=no
grep -q process_pool_executor_new "$src/include/cfutures.h" && have_pp=yes

mkdir -p "$W/www"
serve main --delay 0.05 --users 40 --root "$W/www"
B=http://127.0.0.1:$port

# --- fetch_urls -----------------------------------------------------------------------
urls=() bytes=0
for i in $(seq 1 12); do urls+=("$B/pages/$i"); bytes=$((bytes + 1024 * i)); done
run fetch-urls "$S/fetch_urls" "${urls[@]}"
expect_rc 0
if [ $have_pp = yes ]; then
    want="thread: 12 results, $bytes bytes in T seconds
process: 12 results, $bytes bytes in T seconds"
else
    want="thread: 12 results, $bytes bytes in T seconds
process: no process pool in this cfutures"
fi
[ "$(shape)" = "$want" ] || bad "$out"
run fetch-urls-404 "$S/fetch_urls" -e thread "$B/pages/1" "$B/nothing/here"
expect_rc 1
grep -q -F "$B/nothing/here: HTTP 404" "$W/$case.err" || bad "no 404 message: $(cat "$W/$case.err")"
[ "$(shape)" = "thread: 1 results, 1024 bytes in T seconds" ] || bad "$out"

# --- temp_getter -----------------------------------------------------------------------
temps="it is -4°C in Edmonton
it is 8°C in Victoria
it is -12°C in Winnipeg
it is 1°C in Fredericton
it is 2°C in St. John's
it is 4°C in Halifax
it is 7°C in Toronto
it is 0°C in Charlottetown
it is -0°C in Quebec City
it is -9°C in Regina
Got 10 temps in T seconds"
if [ -x "$S/temp_getter" ]; then
    run temp-getter "$S/temp_getter" "$B"
    expect_rc 0; [ "$(shape)" = "$temps" ] || bad "$out"
    run temp-getter-serial "$S/temp_getter" --serial "$B"
    expect_rc 0; [ "$(shape)" = "$temps" ] || bad "$out"
    run temp-getter-template "$S/temp_getter" "$B/data/2.5/weather?units=metric&q={},CA"
    expect_rc 0; [ "$(shape)" = "$temps" ] || bad "$out"
    run temp-getter-no-service "$S/temp_getter" "$B/nowhere"
    expect_rc 1
    grep -q "^TempGetter: Edmonton: " "$W/$case.err" || bad "no error: $(cat "$W/$case.err")"
    [ "$(shape)" = "Got 0 temps in T seconds" ] || bad "$out"
    run temp-getter-usage "$S/temp_getter"; expect_rc 2
else
    skipped+=" temp_getter"
fi

# --- rest_users --------------------------------------------------------------------------
# rows DB: "id|name|email" lines, by id.
rows() { "$py" -c 'import sqlite3, sys
for r in sqlite3.connect(sys.argv[1]).execute("SELECT id, name, email FROM users ORDER BY id"):
    print("|".join(map(str, r)))' "$1"; }
users() { for i in $(seq "$1" "$2"); do echo "$i|User $i|user$i@example.com"; done; }
if [ -x "$S/rest_users" ]; then
    db=$W/users.db
    run rest-users "$S/rest_users" -j 8 "$B" "$db" 40
    expect_rc 0
    [ "$out" = "fetched 40 of 40 users, upserted 40; $db holds 40 users" ] || bad "$out"
    [ "$(rows "$db")" = "$(users 1 40)" ] || bad "the table: $(rows "$db" | head)"
    # Again, against a service that lost user 7 and gained 41..45, with
    # user 3 changed locally: 3 is updated, 7 kept, 41..45 inserted.
    "$py" -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE users SET email = ? WHERE id = 3", ("old",)); c.commit()' "$db"
    serve second --users 45 --missing 7
    run rest-users-upsert "$S/rest_users" "http://127.0.0.1:$port" "$db" 45
    expect_rc 1
    grep -q -F "http://127.0.0.1:$port/users/7: HTTP response code said error" "$W/$case.err" ||
        grep -q -F "http://127.0.0.1:$port/users/7" "$W/$case.err" || bad "no error for user 7"
    [ "$out" = "fetched 44 of 45 users, upserted 44; $db holds 45 users" ] || bad "$out"
    [ "$(rows "$db")" = "$(users 1 45)" ] || bad "the table after the upsert: $(rows "$db")"
    run rest-users-usage "$S/rest_users" "$B" "$db"; expect_rc 2
else
    skipped+=" rest_users"
fi

# --- thumbnail_maker -----------------------------------------------------------------------
if [ -x "$S/thumbnail_maker" ]; then
    # Under TSan: libvips' threads synchronise through GLib, which TSan does
    # not instrument, so it flags libvips', libpng's and zlib's own buffers.
    # Those races would be outside our code: TSan looks at ours only.
    export TSAN_OPTIONS="${TSAN_OPTIONS:-} ignore_noninstrumented_modules=1"
    run thumbnail-generate "$S/thumbnail_maker" --generate "$W/www" -n 6
    expect_rc 0
    [ "$(wc -l <"$W/$case.out")" -eq 6 ] || bad "not 6 images: $out"
    cp "$W/$case.out" "$W/sources.txt"
    kinds=thread
    [ $have_pp = yes ] && kinds="process thread"
    for kind in $kinds; do
        dir=$W/thumbs-$kind
        mkdir -p "$dir"
        imgs=()
        for i in 1 2 3 4 5 6; do imgs+=("$B/files/img0$i.png"); done
        run thumbnail-$kind "$S/thumbnail_maker" -e "$kind" -o "$dir" "${imgs[@]}"
        expect_rc 0
        [ "$(shape | sed -E 's/\([0-9]+ bytes\)/(N bytes)/; /^resized/ s/pool of [0-9]+$/pool of P/')" = \
          "downloaded 6 images (N bytes) in T s on a thread pool of 8
resized them to 18 thumbnails in T s on a $kind pool of P
wrote 18 thumbnails to $dir in T s; T s in all" ] || bad "$out"
        # Each thumbnail: a PNG exactly 32, 64 or 200 wide, its height
        # the source's aspect ratio (to a pixel).
        "$py" - "$dir" "$W/sources.txt" <<'PY' || bad "thumbnails: $(ls "$dir")"
import os, struct, sys
folder, sources = sys.argv[1], sys.argv[2]
want = set()
for line in open(sources):
    path, dims = line.split()
    w, h = map(int, dims.split("x"))
    stem = os.path.basename(path)[:-4]
    for size in (32, 64, 200):
        want.add(stem + "_%d.png" % size)
        with open(os.path.join(folder, "%s_%d.png" % (stem, size)), "rb") as f:
            head = f.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n", stem
        tw, th = struct.unpack(">II", head[16:24])
        assert tw == size and abs(th - h * size / w) <= 1, (stem, size, tw, th, w, h)
assert set(os.listdir(folder)) == want, sorted(os.listdir(folder))
PY
    done
    run thumbnail-file-url "$S/thumbnail_maker" -e thread -o "$W" "file://$W/www/img01.png"
    expect_rc 0
    [ -s "$W/img01_200.png" ] || bad "no thumbnail from a file:// URL"
    run thumbnail-404 "$S/thumbnail_maker" -o "$W" "$B/files/none.png"
    expect_rc 1
    grep -q -F "$B/files/none.png" "$W/$case.err" || bad "no error: $(cat "$W/$case.err")"
    run thumbnail-usage "$S/thumbnail_maker" "$B/files/img01.png"; expect_rc 2
else
    skipped+=" thumbnail_maker"
fi

[ -z "$skipped" ] || echo "skipped (library not found by configure):$skipped"
echo "course samples (network): $cases cases, $failures failures"
[ "$failures" -eq 0 ]
