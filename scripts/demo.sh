#!/usr/bin/env bash
# The README's demo command: builds cfutures and runs
#  1. samples/quickstart, the README's example (submit, result, as_completed);
#  2. samples/pdf_downloader, the course's parallel PDF downloader, against
#     nginx on a free 127.0.0.1 port serving generated forms (no internet).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh libcurl4-openssl-dev nginx
bash scripts/autogen.sh
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q --enable-werror
make -j"$(nproc)" >/dev/null
dl=samples/pdf_downloader/pdf_downloader
if [ ! -x "$dl" ]; then # configured before libcurl was installed
    ../configure -q --enable-werror && make -j"$(nproc)" >/dev/null
fi
echo "== samples/quickstart: five tasks on a thread pool, results as they complete"
./samples/quickstart

echo
echo "== samples/pdf_downloader: the course's five IRS forms from nginx on loopback"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdfdl-demo.XXXXXX")
trap 'bash "$top/scripts/nginx-serve.sh" stop "$tmp/nginx" || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/www"
i=0
for f in f1040 f1040a f1040ez f1040es f1040sb; do
    i=$((i + 1))
    # A PDF header, a few hundred KiB of comment bytes, the end marker.
    { printf '%%PDF-1.4\n%% %s, generated for the demo\n' "$f"
      head -c $(( (i * 97 + 150) * 1024 )) /dev/urandom | base64 | sed 's/^/% /'
      printf '%%%%EOF\n'; } > "$tmp/www/$f.pdf"
done
cp "$tmp/www/f1040.pdf" "$tmp/www/f1040" # served, but its URL has no extension
chmod -R a+rX "$tmp/www"
port=$(bash "$top/scripts/nginx-serve.sh" start "$tmp/www" "$tmp/nginx")
echo "nginx serves $tmp/www on http://127.0.0.1:$port/"
echo
echo "\$ pdf_downloader --base http://127.0.0.1:$port/ -o forms     # 5 workers, as in the course"
"./$dl" --base "http://127.0.0.1:$port/" -o "$tmp/forms" 2>&1
echo
echo "\$ ls -l forms"
ls -l "$tmp/forms" | tail -n +2
echo
echo "\$ cmp each file with the server's copy"
for f in "$tmp"/www/f*.pdf; do
    cmp "$f" "$tmp/forms/$(basename "$f")" && echo "  $(basename "$f"): identical"
done
echo
echo "== failures are reported per URL, in words, and leave no file behind"
echo "\$ pdf_downloader -o more http://127.0.0.1:$port/f1040.pdf http://127.0.0.1:$port/missing.pdf http://127.0.0.1:$port/f1040"
rc=0
"./$dl" -o "$tmp/more" "http://127.0.0.1:$port/f1040.pdf" "http://127.0.0.1:$port/missing.pdf" \
    "http://127.0.0.1:$port/f1040" 2>&1 || rc=$?
echo "exit status $rc (0 all ok, 1 some failed, 2 bad usage); the folder holds: $(ls -A "$tmp/more" | tr '\n' ' ')"
