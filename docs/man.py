#!/usr/bin/env python3
"""Writes cfutures' manual pages from Doxygen's XML of include/cfutures.h.

    man.py XMLDIR HEADER OUTDIR VERSION DATE

One page in OUTDIR/man3 for every function, typedef, enum and struct the
header declares (NAME from the doc comment's first sentence, SYNOPSIS from
the declaration, DESCRIPTION from the whole comment, SEE ALSO from the names
it mentions), and OUTDIR/man7/cfutures.7 from docs/overview.md (Doxygen's
main page) followed by the header's own top comment and its error codes.
Nothing here names a function: the set of pages is whatever the header
declares. Only the standard library is used.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

SECTION_TITLE = "cfutures manual"


def esc(text):
    """Escapes running text for man(7): backslashes and dashes."""
    return text.replace("\\", "\\e").replace("-", "\\-")


class Roff:
    """Collects man(7) output; running text is kept as words between requests."""

    def __init__(self):
        self.lines = []
        self.words = []
        self.fonts = ["R"]

    def font(self, f):
        """Enters font f (B or I); leave() goes back. Nesting keeps one font."""
        if f != self.fonts[-1]:
            self.words.append("\\f" + f)
        self.fonts.append(f)

    def leave(self):
        f = self.fonts.pop()
        if f != self.fonts[-1]:
            self.words.append("\\f" + self.fonts[-1])

    def text(self, s):
        self.words.append(s)

    def flush(self):
        line = "".join(self.words)
        self.words = []
        line = re.sub(r"[ \t\n]+", " ", line).strip()
        if not line:
            return
        # One sentence a line reads well in diffs and keeps lines short.
        for part in re.split(r"(?<=[a-z)][.]) (?=[A-Z(])", line):
            if part[:1] in (".", "'"):
                part = "\\&" + part
            self.lines.append(part)

    def req(self, r):
        self.flush()
        self.lines.append(r)

    def raw(self, line):
        """A line of a literal block: kept as is, escaped."""
        line = esc(line)
        if line[:1] in (".", "'"):
            line = "\\&" + line
        self.lines.append(line)

    def out(self):
        self.flush()
        # No paragraph request next to a section, list item or another one.
        heads = (".SH", ".SS", ".PP", ".TP", ".IP")
        out = []
        for i, l in enumerate(self.lines):
            nxt = self.lines[i + 1] if i + 1 < len(self.lines) else ".SH"
            if l == ".PP" and ((out and out[-1].startswith(heads)) or nxt.startswith(heads)):
                continue
            out.append(l)
        return "\n".join(out) + "\n"


def inline(r, node, font=None):
    """Renders the children of a <para> (or similar) inline."""
    if node.text:
        r.text(esc(node.text))
    for c in node:
        tag = c.tag
        if tag in ("computeroutput", "bold", "ref"):
            r.font("B")
            inline(r, c)
            r.leave()
        elif tag in ("emphasis", "parametername"):
            r.font("I")
            inline(r, c)
            r.leave()
        elif tag == "ulink":
            inline(r, c)
            r.text(" <" + esc(c.get("url", "")) + ">")
        elif tag in ("itemizedlist", "orderedlist"):
            block(r, c)
        elif tag == "programlisting":
            block(r, c)
        elif tag == "simplesect":
            block(r, c)
        elif tag == "linebreak":
            r.req(".br")
        elif tag == "sp":
            r.text(" ")
        elif tag in ("ndash", "mdash"):
            r.text("\\(em" if tag == "mdash" else "\\(en")
        elif tag == "table":
            table(r, c)
        elif tag == "anchor":
            pass
        else:
            inline(r, c)
        if c.tail:
            r.text(esc(c.tail))


def code_text(node):
    """A code line's text: Doxygen writes its spaces as <sp/>."""
    out = [node.text or ""]
    for c in node:
        out.append(" " if c.tag == "sp" else code_text(c))
        out.append(c.tail or "")
    return "".join(out)


def table(r, node):
    """A Markdown table as one tagged paragraph a row (first cell as tag)."""
    rows = node.findall("row")
    for row in rows:
        cells = row.findall("entry")
        if not cells or cells[0].get("thead") == "yes":
            continue
        r.req(".TP")
        for p in cells[0].iter("para"):
            inline(r, p)
        r.flush()
        for cell in cells[1:]:
            for p in cell.findall("para"):
                inline(r, p)
                r.text(" ")


def block(r, node):
    """Renders block content: paragraphs, lists, code, sections."""
    tag = node.tag
    if tag in ("briefdescription", "detaileddescription", "listitem", "internal"):
        for c in node:
            block(r, c)
    elif tag == "para":
        r.req(".PP")
        inline(r, node)
        r.flush()
    elif tag in ("itemizedlist", "orderedlist"):
        for i, item in enumerate(node.findall("listitem"), 1):
            mark = "\\(bu" if tag == "itemizedlist" else "%d." % i
            r.req(".IP %s 4" % mark)
            first = True
            for c in item:
                if c.tag == "para" and first:
                    inline(r, c)
                    r.flush()
                    first = False
                else:
                    block(r, c)
        r.req(".PP")
    elif tag == "programlisting":
        r.req(".PP")
        r.req(".RS 4")
        r.req(".nf")
        for codeline in node.findall("codeline"):
            r.raw(code_text(codeline))
        r.req(".fi")
        r.req(".RE")
        r.req(".PP")
    elif tag == "simplesect":
        kind = node.get("kind", "")
        if kind in ("return", "see", "note", "warning"):
            r.req(".PP")
            r.text("\\fB%s:\\fP " % {"return": "Returns", "see": "See also"}.get(
                kind, kind.capitalize()))
        for c in node:
            if c.tag == "para":
                inline(r, c)
                r.flush()
            else:
                block(r, c)
    elif re.fullmatch(r"sect[1-4]", tag):
        title = node.find("title")
        level = int(tag[-1])
        head = "".join(title.itertext()).strip() if title is not None else ""
        r.req((".SH " if level == 1 else ".SS ") + quote_head(head, level))
        for c in node:
            if c.tag != "title":
                block(r, c)
    elif tag in ("title", "anchor"):
        pass
    else:
        for c in node:
            block(r, c)


def quote_head(head, level):
    head = head.upper() if level == 1 else head
    return '"' + esc(head).replace('"', "'") + '"'


def plain(node):
    if node is None:
        return ""
    return re.sub(r"\s+", " ", "".join(node.itertext())).strip()


def first_sentence(member):
    brief = plain(member.find("briefdescription"))
    if not brief:
        brief = plain(member.find("detaileddescription"))
    m = re.match(r"(.+?[.;])(\s|$)", brief)
    s = (m.group(1) if m else brief).rstrip(".;")
    # "The next result" -> "the next result"; "executor_map over" stays.
    if re.match(r"[A-Z][a-z]+\b(?!_)", s):
        s = s[0].lower() + s[1:]
    return s


class Api:
    """What the header declares, read from Doxygen's XML."""

    def __init__(self, xmldir, header):
        self.header_lines = open(header, encoding="utf-8").read().split("\n")
        index = ET.parse(os.path.join(xmldir, "index.xml")).getroot()
        self.functions, self.types, self.defines = [], [], []
        self.file = None
        self.mainpage = None
        for comp in index.findall("compound"):
            kind, refid = comp.get("kind"), comp.get("refid")
            path = os.path.join(xmldir, refid + ".xml")
            if kind == "file" and comp.findtext("name") == os.path.basename(header):
                self.file = ET.parse(path).getroot().find("compounddef")
            elif kind == "page" and refid == "indexpage":
                self.mainpage = ET.parse(path).getroot().find("compounddef")
            elif kind == "struct":
                self.types.append(("struct", ET.parse(path).getroot().find("compounddef")))
        if self.file is None:
            sys.exit("man.py: no %s in %s" % (os.path.basename(header), xmldir))
        for sec in self.file.findall("sectiondef"):
            for m in sec.findall("memberdef"):
                kind = m.get("kind")
                if kind == "function":
                    self.functions.append(m)
                elif kind in ("typedef", "enum"):
                    name = m.findtext("name")
                    if kind == "typedef" and any(
                            t[1].findtext("compoundname") == name for t in self.types):
                        continue
                    self.types.append((kind, m))
                elif kind == "define":
                    self.defines.append(m)
        self.names = set(f.findtext("name") for f in self.functions)
        self.names |= set(self.type_name(t) for t in self.types)

    @staticmethod
    def type_name(t):
        kind, node = t
        return node.findtext("compoundname") if kind == "struct" else node.findtext("name")

    def body(self, node):
        """The declaration's own lines in the header (typedef ... name;)."""
        loc = node.find("location")
        start = int(loc.get("bodystart", loc.get("line")))
        end = int(loc.get("bodyend", "-1"))
        if end < start:
            end = start
        lines = self.header_lines[start - 1:end]
        # A "typedef struct x {" may sit one line above Doxygen's bodystart.
        if not re.match(r"\s*typedef\b", lines[0]) and start > 1 and \
                re.match(r"\s*typedef\b", self.header_lines[start - 2]):
            lines.insert(0, self.header_lines[start - 2])
        # Up to the line that ends the declaration.
        i = end
        while not re.search(r";\s*(/\*.*)?$", lines[-1]) and i < len(self.header_lines):
            lines.append(self.header_lines[i])
            i += 1
        return lines

    def mentioned(self, node, own):
        """Names with pages that @node's text mentions, in order."""
        text = plain(node)
        seen = []
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text):
            if word in self.names and word != own and word not in seen:
                seen.append(word)
        return seen


def head(r, name, section, version, date, whatis):
    r.req('.TH "%s" "%s" "%s" "cfutures %s" "%s"' % (
        esc(name.upper()), section, date, version, SECTION_TITLE))
    r.req(".SH NAME")
    r.text("%s \\- %s" % (esc(name), esc(whatis)))
    r.flush()


def synopsis(r, lines):
    r.req(".SH SYNOPSIS")
    r.req(".nf")
    r.req(".B #include <cfutures.h>")
    r.req(".PP")
    for line in lines:
        r.raw(line)
    r.req(".fi")
    r.req(".PP")
    r.text("Link with \\fI\\-lcfutures\\fP (pkg\\-config: \\fIcfutures\\fP).")
    r.flush()


def see_also(r, api, names):
    r.req(".SH SEE ALSO")
    refs = ["\\fB%s\\fP(3)" % esc(n) for n in names] + ["\\fBcfutures\\fP(7)"]
    r.flush()
    r.lines.extend(",\n".join(refs).split("\n"))


def function_page(api, f, version, date):
    name = f.findtext("name")
    r = Roff()
    head(r, name, 3, version, date, first_sentence(f))
    decl = "%s %s%s;" % (plain(f.find("type")), name, plain(f.find("argsstring")))
    decl = re.sub(r"\* (?=[A-Za-z_])", "*", decl)
    synopsis(r, [decl])
    r.req(".SH DESCRIPTION")
    block(r, f.find("briefdescription"))
    block(r, f.find("detaileddescription"))
    see_also(r, api, api.mentioned(f, name))
    return name, r.out()


def type_page(api, t, version, date):
    kind, node = t
    name = api.type_name(t)
    r = Roff()
    head(r, name, 3, version, date, first_sentence(node))
    synopsis(r, api.body(node))
    r.req(".SH DESCRIPTION")
    block(r, node.find("briefdescription"))
    block(r, node.find("detaileddescription"))
    fields = []
    if kind == "struct":
        for m in node.iter("memberdef"):
            if m.get("kind") == "variable":
                fields.append((m.findtext("name"), m))
    elif kind == "enum":
        for v in node.findall("enumvalue"):
            fields.append((v.findtext("name"), v))
    if fields:
        r.req(".SH FIELDS" if kind == "struct" else ".SH VALUES")
        for fname, m in fields:
            r.req(".TP")
            r.text("\\fB%s\\fP" % esc(fname))
            r.flush()
            desc = plain(m.find("briefdescription")) + " " + plain(m.find("detaileddescription"))
            r.text(esc(desc.strip() or "(see SYNOPSIS)"))
            r.flush()
    users = [f for f in api.functions if re.search(
        r"\b%s\b" % re.escape(name), plain(f.find("type")) + plain(f.find("argsstring")))]
    if users:
        r.req(".SH FUNCTIONS")
        r.text("The functions that take or return %s:" % esc(name))
        r.flush()
        for f in users:
            r.req(".TP")
            r.text("\\fB%s\\fP(3)" % esc(f.findtext("name")))
            r.flush()
            r.text(esc(first_sentence(f)) + ".")
            r.flush()
    see = [f.findtext("name") for f in users]
    see += [n for n in api.mentioned(node, name) if n not in see]
    see_also(r, api, see)
    return name, r.out()


def overview_page(api, version, date):
    r = Roff()
    head(r, "cfutures", 7, version, date, "Python's concurrent.futures for C")
    r.req(".SH SYNOPSIS")
    r.req(".nf")
    r.req(".B #include <cfutures.h>")
    r.req(".fi")
    r.req(".PP")
    r.text("cc prog.c $(pkg\\-config \\-\\-cflags \\-\\-libs cfutures)")
    r.flush()
    if api.mainpage is not None:
        desc = api.mainpage.find("detaileddescription")
        r.req(".SH DESCRIPTION")
        block(r, desc)
    # The header's top comment, less its first line (the overview's title).
    block(r, api.file.find("detaileddescription"))
    r.req(".SH \"ERROR CODE VALUES\"")
    for d in api.defines:
        name = d.findtext("name")
        if not name.startswith("FUT_E"):
            continue
        r.req(".TP")
        r.text("\\fB%s\\fP %s" % (esc(name), esc(d.findtext("initializer") or "")))
        r.flush()
        r.text(esc(plain(d.find("briefdescription"))))
        r.flush()
    r.req(".SH \"SEE ALSO\"")
    refs = ["\\fB%s\\fP(3)" % esc(f.findtext("name")) for f in api.functions]
    refs += ["\\fB%s\\fP(3)" % esc(api.type_name(t)) for t in api.types]
    r.lines.extend(",\n".join(refs).split("\n"))
    return r.out()


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    xmldir, header, outdir, version, date = sys.argv[1:]
    api = Api(xmldir, header)
    for sub in ("man3", "man7"):
        os.makedirs(os.path.join(outdir, sub), exist_ok=True)
    pages = [function_page(api, f, version, date) for f in api.functions]
    pages += [type_page(api, t, version, date) for t in api.types]
    for name, text in pages:
        with open(os.path.join(outdir, "man3", name + ".3"), "w", encoding="utf-8") as fp:
            fp.write(text)
    with open(os.path.join(outdir, "man7", "cfutures.7"), "w", encoding="utf-8") as fp:
        fp.write(overview_page(api, version, date))
    print("man.py: %d pages in section 3, 1 in section 7" % len(pages))


if __name__ == "__main__":
    main()
