/*
 * What PORTING.md's snippets take as given ("In the examples, ex is an
 * executor, f a future, fs an array of n futures, sq a task function and x
 * its argument", and the other names they use without declaring).
 * docs/examples.sh compiles each snippet after this, its declarations at
 * file scope and its statements in a function of their own.
 */
#include <cfutures.h>

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wshadow"

static executor_t *ex;
static future_t *f, *p, *fs[8], *futures[8], *done[8];
static size_t n = 8, nd, i;
static int64_t x, v;
static const void *args[8], *data, *arg;
static size_t lens[8], len;
static const future_error_t *err;
static as_completed_t *it;
static atomic_int finished;
static char *url;
static const char *urls[8];
static long status;
static int ok;
static int argc; /* main's, as the MPI pool's first line takes them */
static char **argv;
static struct config { int verbose; } cfg;
static struct item { int id; } items[8];

static void sq(task_t *t) { (void)t; }
static void init(task_t *t) { (void)t; }
static void downloader(task_t *t) { (void)t; }
static void report(task_t *t) { (void)t; }
static void fn(task_t *t) { (void)t; }
static void tick(task_t *t) { (void)t; }
static void work_a_little(void) {}
static void use(const void *d, size_t l) { (void)d; (void)l; }
