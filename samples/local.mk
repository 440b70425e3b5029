# Samples: small programs that port the Python course's idioms.
noinst_PROGRAMS = samples/quickstart
samples_quickstart_SOURCES = samples/quickstart.c
samples_quickstart_LDADD = lib/libcfutures.la $(PTHREAD_LIBS)
