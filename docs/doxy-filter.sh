#!/bin/sh
# Doxygen's INPUT_FILTER for include/cfutures.h: reads the header's own
# conventions as Doxygen markup without changing a line of it (line numbers
# are kept, so warnings point at the header):
#  - line 1's "/*" opens the file's doc comment (the conventions and the
#    semantics pinned down: cfutures(7) and the HTML file page);
#  - "@name" names a parameter: \p name (Doxygen's own @param, @return,
#    @brief, @see, @note stay commands);
#  - a comment after a declaration on the same line ("int x; /* ... */",
#    "#define FUT_EOF (-10007) /* ... */") documents that member: /**< ... */;
#  - a one-line comment on a line of its own ("/* Wait without limit. */")
#    documents what follows it (not the "/* ---- tasks */" rulers);
#  - a " *  - item" list (items continued on lines indented deeper) ends at
#    the first line that is not: <ul><li>...</ul>, so the text after a list
#    is not read as part of its last item.
sed -E \
    -e '1s|^/\*$|/** @file|' \
    -e 's/@(file|param|returns?|brief|see|note|warning|retval)\b/@@\1/g' \
    -e 's/(^|[^@])@([A-Za-z_][A-Za-z0-9_]*)/\1\\p \2/g' \
    -e 's/@@/@/g' \
    -e '/^#/!s/([[:space:]])#([A-Za-z])/\1\\#\2/g' \
    -e 's#^/\* ([^-=].*) \*/$#/** \1 */#' \
    -e '/^#(endif|else|if)/!s#([^[:space:]/*]) +/\*([^*<!])#\1 /**<\2#' \
    "$1" |
awk '
    /^ \*  +- / { sub(/^ \*  +- /, (inlist ? " * <li>" : " * <ul><li>")); inlist = 1; print; next }
    inlist && /^ \*   +[^ ]/ { print; next }
    inlist { inlist = 0; sub(/^ \*/, " * </ul>"); if ($0 !~ /^ \* <\/ul>/) $0 = "</ul>" $0 }
    { print }'
