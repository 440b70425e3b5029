# The reference manual (issue 17), from one source: the doc comments of
# include/cfutures.h (and docs/overview.md for cfutures(7)). Doxygen writes
# the HTML reference and XML; docs/man.py turns the XML into one section 3
# page per public function and type, and cfutures(7). help2man writes
# pdf_downloader(1) from the tool's own --help. Everything lands in
# docs/ref/ of the build tree:
#   docs/ref/html/index.html  the HTML reference (make html)
#   docs/ref/man/man{1,3,7}/  the man pages (built by make, installed by
#                             make install)
# No list of names here: the pages are whatever the header declares.
DOCS_SRC = docs/Doxyfile docs/doxy-filter.sh docs/man.py docs/overview.md \
	$(top_srcdir)/PORTING.md $(top_srcdir)/include/cfutures.h
EXTRA_DIST += docs/Doxyfile docs/doxy-filter.sh docs/man.py docs/overview.md \
	docs/check-man.sh docs/examples.sh docs/snippets.h docs/snippets.awk \
	docs/check-version.sh PORTING.md \
	scripts/deb.sh

# What make all builds here (the pages the tools at hand can make).
DOCS_ALL =
if HAVE_DOCS
DOCS_ALL += docs/ref/stamp
html-local: docs/ref/stamp
endif
if HAVE_CURL
if HAVE_HELP2MAN
DOCS_ALL += docs/ref/man/man1/pdf_downloader.1
endif
endif
all-local: $(DOCS_ALL)

# Doxygen's warnings (a broken reference, unknown markup) fail the build.
docs/ref/stamp: $(DOCS_SRC)
	$(AM_V_GEN)rm -rf docs/ref/html docs/ref/xml docs/ref/man/man3 docs/ref/man/man7 && \
	$(MKDIR_P) docs/ref && \
	CF_SRCDIR='$(abs_top_srcdir)' CF_OUTDIR='$(abs_top_builddir)/docs/ref' \
	CF_VERSION='$(PACKAGE_VERSION)' $(DOXYGEN) '$(top_srcdir)/docs/Doxyfile' && \
	if test -s docs/ref/warnings.log; then cat docs/ref/warnings.log; exit 1; fi && \
	date=`date -u -d "@$${SOURCE_DATE_EPOCH:-\`date +%s\`}" +%Y-%m-%d` && \
	$(PYTHON3) '$(top_srcdir)/docs/man.py' docs/ref/xml '$(top_srcdir)/include/cfutures.h' \
		docs/ref/man '$(PACKAGE_VERSION)' "$$date" >/dev/null && \
	touch $@

# pdf_downloader(1), when the tool and help2man are there.
docs/ref/man/man1/pdf_downloader.1: samples/pdf_downloader/pdf_downloader$(EXEEXT)
	$(AM_V_GEN)$(MKDIR_P) docs/ref/man/man1 && \
	$(HELP2MAN) --no-info --section=1 --source='cfutures $(PACKAGE_VERSION)' \
		--manual='cfutures manual' \
		--name='download files in parallel, checked and renamed when complete' \
		--output=$@.tmp samples/pdf_downloader/pdf_downloader$(EXEEXT) && \
	date=`date -u -d "@$${SOURCE_DATE_EPOCH:-\`date +%s\`}" +%Y-%m-%d` && \
	sed -E "s/^(\\.TH [^\"]*\"1\") \"[^\"]*\"/\\1 \"$$date\"/" $@.tmp >$@ && rm -f $@.tmp

# What the packages ship, without the samples, benchmarks and tests that
# make all builds too (debian/rules: a quicker package build).
packaged: $(lib_LTLIBRARIES) $(bin_PROGRAMS) $(DOCS_ALL)
.PHONY: packaged

# make install / uninstall: whatever pages were built.
install-data-local:
	@for s in 1 3 7; do \
	  ls docs/ref/man/man$$s/*.$$s >/dev/null 2>&1 || continue; \
	  echo " $(MKDIR_P) '$(DESTDIR)$(mandir)/man$$s'"; \
	  $(MKDIR_P) "$(DESTDIR)$(mandir)/man$$s" || exit 1; \
	  echo " $(INSTALL_DATA) docs/ref/man/man$$s/*.$$s '$(DESTDIR)$(mandir)/man$$s'"; \
	  $(INSTALL_DATA) docs/ref/man/man$$s/*.$$s "$(DESTDIR)$(mandir)/man$$s" || exit 1; \
	done
uninstall-local:
	@for s in 1 3 7; do \
	  for f in docs/ref/man/man$$s/*.$$s; do \
	    test -f "$$f" || continue; \
	    rm -f "$(DESTDIR)$(mandir)/man$$s/`basename $$f`"; \
	  done; \
	done
clean-local:
	-rm -rf docs/ref docs/examples

# Every public name has a page, every page a public name, every page lints
# clean; the manual's and the porting guide's examples compile and run.
TESTS += docs/check-man.sh docs/examples.sh
# The version is set once (configure.ac) and agrees everywhere else.
TESTS += docs/check-version.sh
TESTS_ENVIRONMENT += DOCS_CC='$(CC)' DOCS_CFLAGS='$(CFLAGS)' DOCS_LDFLAGS='$(LDFLAGS)' PACKAGE_VERSION='$(PACKAGE_VERSION)'; export DOCS_CC DOCS_CFLAGS DOCS_LDFLAGS PACKAGE_VERSION;
