# docs/examples.sh: splits one PORTING.md snippet into its file-scope items
# (a "static ...(" function or a "struct x {" type, up to where its braces
# close) and its statements; "..." (code left out) becomes "{}".
# awk -v top=FILE -v body=FILE -f snippets.awk SNIPPET
function depth(s,   t, o, c) { t = s; o = gsub(/\{/, "", t); t = s; c = gsub(/\}/, "", t); return o - c }
{
    line = $0
    gsub(/\.\.\./, "{}", line)
    if (d > 0 || (!intop && line ~ /^(static .*\(|struct [A-Za-z_]+ \{)/)) {
        print line > top
        d += depth(line)
        intop = (d > 0)
        next
    }
    print line > body
}
