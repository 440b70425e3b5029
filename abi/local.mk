# Exported symbols and ABI (issue 17). The installed library exports exactly
# the functions the header declares: abi/exports.sh derives the list from
# include/cfutures.h, and libtool's -export-symbols makes it the linker's
# version script (anonymous: no symbol versions). abi/check-abi.sh checks
# the SONAME, the exports and the ABI against the last release's dump.
if HAVE_MPI
CF_WITH_MPI = yes
else
CF_WITH_MPI = no
endif
lib/libcfutures.sym: $(top_srcdir)/include/cfutures.h $(top_srcdir)/abi/exports.sh Makefile
	$(AM_V_GEN)$(MKDIR_P) lib && \
	CF_WITH_MPI=$(CF_WITH_MPI) sh '$(top_srcdir)/abi/exports.sh' \
		'$(top_srcdir)/include/cfutures.h' >$@.tmp && \
	mv $@.tmp $@
EXTRA_lib_libcfutures_la_DEPENDENCIES = lib/libcfutures.sym
CLEANFILES += lib/libcfutures.sym
EXTRA_DIST += abi/exports.sh abi/check-abi.sh abi/cfutures-0.1.0.abi abi/README.md
TESTS += abi/check-abi.sh
TESTS_ENVIRONMENT += CF_LT_VERSION='$(CF_LT_VERSION)'; export CF_LT_VERSION; \
	CF_WITH_MPI='$(CF_WITH_MPI)'; export CF_WITH_MPI;

# At a release: record this library's ABI as the baseline later builds
# are checked against (abi/cfutures-VERSION.abi, to commit).
abi-dump: lib/libcfutures.la
	abidw --headers-dir '$(top_srcdir)/include' --drop-private-types --no-corpus-path \
		--out-file '$(top_srcdir)/abi/cfutures-$(PACKAGE_VERSION).abi' \
		`ls lib/.libs/libcfutures.so.*.*.* | head -n 1`
.PHONY: abi-dump
