#!/usr/bin/env bash
# Builds the Debian packages (debian/) from the files git tracks, in a copy
# under a temporary folder (dpkg-buildpackage writes its output next to the
# source tree), checks them with lintian (no error, no warning) and leaves
# the .deb files in OUT (default build/deb). Installs what it needs.
#   bash scripts/deb.sh [OUT]        DEB_BUILD_OPTIONS=nocheck skips make check
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=$(realpath -m "${1:-build/deb}")
bash scripts/setup.sh dpkg-dev debhelper lintian doxygen help2man python3 \
    libcurl4-openssl-dev pkgconf fakeroot valgrind
# The version is AC_INIT's (docs/check-version.sh keeps debian/changelog on it).
version=$(sed -n 's/^AC_INIT(\[cfutures\], \[\([^]]*\)\].*/\1/p' configure.ac)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/cfutures-$version
mkdir -p "$src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"
(cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$tmp/build.log" 2>&1 ||
    { tail -n 60 "$tmp/build.log"; echo "dpkg-buildpackage failed"; exit 1; }
grep -E 'dpkg-gensymbols: warning|^\+#MISSING|^\+ ' "$tmp/build.log" || true
changes=$(ls "$tmp"/cfutures_*.changes)
lintian --fail-on error,warning --suppress-tags-from-file /dev/null "$changes" |
    tee "$tmp/lintian.log"
mkdir -p "$out"
cp "$tmp"/*.deb "$out"/
for d in "$out"/*.deb; do echo "== $(basename "$d")"; dpkg-deb -c "$d" | awk '{print $6}' |
    grep -v '/$' | sed -n '1,6p;7{s/.*/  .../p}'; done
echo "deb: ok ($(ls "$out"/*.deb | wc -l) packages in $out)"
