/*
 * replay.c: a main() for a fuzz target without libFuzzer (make check).
 * Feeds every file of the target's seed corpus, or every file named on the
 * command line (a crash input libFuzzer saved), to LLVMFuzzerTestOneInput,
 * so the corpus is exercised on every build, with any compiler.
 * The corpus is $top_srcdir/tests/fuzz/corpus/FUZZ_TARGET (top_srcdir from
 * the environment, as TESTS_ENVIRONMENT sets it; "." otherwise).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET must name the corpus directory"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file through the target; -1 if it cannot be read. */
static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, fp);
        if (len < cap)
            break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int err = ferror(fp);
    fclose(fp);
    if (!buf || err) {
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            if (replay_file(argv[i]) < 0) {
                fprintf(stderr, "replay: cannot read %s\n", argv[i]);
                return 99;
            }
            n++;
        }
        printf("replayed %zu inputs through fuzz_%s\n", n, FUZZ_TARGET);
        return 0;
    }
    const char *top = getenv("top_srcdir");
    char dir[4096], path[4096 + 256];
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top ? top : ".", FUZZ_TARGET);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: no corpus at %s\n", dir);
        return 99;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (replay_file(path) < 0) {
            fprintf(stderr, "replay: cannot read %s\n", path);
            closedir(d);
            return 99;
        }
        n++;
    }
    closedir(d);
    printf("replayed %zu inputs from %s through fuzz_%s\n", n, dir, FUZZ_TARGET);
    return n > 0 ? 0 : 99;
}
