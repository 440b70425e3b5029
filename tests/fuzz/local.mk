# Fuzz targets (issue 8; STYLE.md section 7). FUZZ_TARGETS lists each target
# as NAME:SOURCES (comma separated, from the top source folder); each has
# tests/fuzz/fuzz_NAME.c (LLVMFuzzerTestOneInput), a seed corpus in
# tests/fuzz/corpus/NAME/, and a replay program that make check runs over
# that corpus with the ordinary compiler (tests/fuzz/replay.c).
#
# The wire decoder joins with: FUZZ_TARGETS += wire:lib/process/wire.c, its
# fuzz_wire.c and corpus/wire/, and a replay_wire stanza like replay_names'.
FUZZ_TARGETS =
if HAVE_CURL
FUZZ_TARGETS += names:samples/pdf_downloader/names.c
endif

# names.c parses with libcurl: built, replayed and fuzzed only with it.
if HAVE_CURL
check_PROGRAMS += tests/fuzz/replay_names
endif
tests_fuzz_replay_names_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_names.c \
	samples/pdf_downloader/names.c samples/pdf_downloader/names.h
tests_fuzz_replay_names_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/samples/pdf_downloader \
	-DFUZZ_TARGET='"names"' $(CURL_CFLAGS)
tests_fuzz_replay_names_LDADD = $(CURL_LIBS)

# make fuzz [FUZZ_SECONDS=N] [FUZZ_CC=clang-14]: each target for N seconds
# under libFuzzer + ASan + UBSan; skips (says so) without clang's libFuzzer.
FUZZ_SECONDS = 60
FUZZ_CC = clang
fuzz:
	@srcdir='$(top_srcdir)' FUZZ_CC='$(FUZZ_CC)' FUZZ_LIBS='$(CURL_CFLAGS) $(CURL_LIBS)' \
	  $(SHELL) $(top_srcdir)/tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS) || \
	  { rc=$$?; test $$rc -eq 77 || exit $$rc; }
.PHONY: fuzz

# The process pool's frame decoder (lib/process/wire.c). Its seeds are written by
# the encoder itself: tests/fuzz/wire_seeds DIR (not built by default).
FUZZ_TARGETS += wire:lib/process/wire.c
check_PROGRAMS += tests/fuzz/replay_wire
tests_fuzz_replay_wire_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_wire.c \
	lib/process/wire.c lib/process/wire.h
tests_fuzz_replay_wire_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET='"wire"'

EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/corpus tests/fuzz/wire_seeds.c
clean-local: clean-fuzz
clean-fuzz:
	-rm -rf tests/fuzz/work tests/fuzz/fuzz_*.log
	-for spec in $(FUZZ_TARGETS); do rm -f tests/fuzz/fuzz_$${spec%%:*}; done
.PHONY: clean-fuzz
