#!/bin/sh
# The version is set once, in configure.ac's AC_INIT (PACKAGE_VERSION);
# everything that repeats it must agree: the header's CFUTURES_VERSION and
# its MAJOR/MINOR/PATCH, debian/changelog's upstream version, and
# CHANGELOG.md (keepachangelog: an [Unreleased] section, and the newest
# release, if any, is not newer than this version). cfutures.pc, the man
# pages and the HTML get it from configure directly.
src=${top_srcdir:-.}
v=${PACKAGE_VERSION:?PACKAGE_VERSION not set}
fail=0
hdr=$src/include/cfutures.h
hv=$(sed -n 's/^#define CFUTURES_VERSION "\(.*\)"$/\1/p' "$hdr")
[ "$hv" = "$v" ] || { echo "cfutures.h: CFUTURES_VERSION \"$hv\", configure.ac $v"; fail=1; }
parts=$(for p in MAJOR MINOR PATCH; do
    sed -n "s/^#define CFUTURES_VERSION_$p \([0-9]*\)$/\1/p" "$hdr"; done | paste -sd.)
[ "$parts" = "$v" ] || { echo "cfutures.h: MAJOR.MINOR.PATCH $parts, configure.ac $v"; fail=1; }
if [ -f "$src/debian/changelog" ]; then
    dv=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$src/debian/changelog" | sed 's/^[0-9]*://; s/-[^-]*$//')
    [ "$dv" = "$v" ] || { echo "debian/changelog: $dv, configure.ac $v"; fail=1; }
fi
cl=$src/CHANGELOG.md
grep -q '^## \[Unreleased\]' "$cl" || { echo "CHANGELOG.md: no '## [Unreleased]' section"; fail=1; }
bad=$(grep '^## ' "$cl" | grep -v -E '^## \[(Unreleased|[0-9]+\.[0-9]+\.[0-9]+)\]( - [0-9]{4}-[0-9]{2}-[0-9]{2})?$')
[ -z "$bad" ] || { echo "CHANGELOG.md: not a keepachangelog heading: $bad"; fail=1; }
bad=$(grep '^### ' "$cl" | grep -v -E '^### (Added|Changed|Deprecated|Removed|Fixed|Security)$')
[ -z "$bad" ] || { echo "CHANGELOG.md: not a keepachangelog change type: $bad"; fail=1; }
last=$(sed -n 's/^## \[\([0-9][0-9.]*\)\].*/\1/p' "$cl" | head -n 1)
if [ -n "$last" ] && [ "$(printf '%s\n%s\n' "$last" "$v" | sort -V | tail -n 1)" != "$v" ]; then
    echo "CHANGELOG.md: release $last is newer than configure.ac's $v"; fail=1
fi
[ "$fail" -eq 0 ] && echo "version $v everywhere"
exit "$fail"
