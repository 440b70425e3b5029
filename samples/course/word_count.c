/*
 * word_count: the log-analysis exercise. Count a word in many large files
 * at once, one task per file, and print the counts in the files' order.
 *
 *   async def count_word_in_file(file_path, word):
 *       async with asyncio.open(file_path, 'r') as file:
 *           content = await file.read()
 *           count = content.lower().count(word.lower())
 *           return count
 *
 *   async def main():
 *       file_paths = [...]
 *       word = "error"
 *       tasks = [asyncio.create_task(count_word_in_file(file_path, word))
 *                for file_path in file_paths]
 *       counts = await asyncio.gather(*tasks)
 *       for file_path, count in zip(file_paths, counts):
 *           print(f"File: {file_path}, Count: {count}")
 *
 * (asyncio has no open(); the course's sketch needs aiofiles. Reading a
 * file is blocking I/O, which a thread pool is for.) gather's ordered
 * results are executor_map: the iterator yields the counts in input order
 * while the files are read at once. count() counts matches that do not
 * overlap, as str.count does; lower() here is ASCII only. A file that
 * cannot be opened or read fails its item with the reason, as open() and
 * read() raise in Python (a folder: IsADirectoryError, EISDIR from read).
 *
 * Usage: word_count [-w WORD] [-j WORKERS] FILE...   (WORD: "error")
 */
#include "course.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct job {
    const char *path;
    const char *word; /* already lower case */
};

/* content.lower().count(word): matches that do not overlap. */
static int64_t count_word(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    int64_t count = 0;
    if (w == 0)
        return (int64_t)n + 1; /* Python: 'abc'.count('') == 4 */
    for (size_t i = 0; i + w <= n;) {
        size_t k = 0;
        while (k < w && tolower((unsigned char)s[i + k]) == word[k])
            k++;
        if (k == w) {
            count++;
            i += w;
        } else {
            i++;
        }
    }
    return count;
}

static void count_word_in_file(task_t *t)
{
    const struct job *j = task_arg(t, NULL);
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd == -1 || fstat(fd, &st) == -1) {
        int e = errno;
        if (fd != -1)
            close(fd);
        task_raise(t, e, "%s", strerror(e));
        return;
    }
    /*
     * content = await file.read(): the whole file, as the course does, up
     * to EOF; st_size is only a first guess (a pipe or a /proc file says 0).
     */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
    size_t got = 0;
    char *content = NULL;
    int e = 0;
    for (;;) {
        if (got == cap || !content) {
            if (content && cap > SIZE_MAX / 2) {
                e = ENOMEM;
                break;
            }
            size_t more = content ? 2 * cap : cap; /* never 0: realloc would free */
            char *p = realloc(content, more);
            if (!p) {
                e = ENOMEM;
                break;
            }
            content = p;
            cap = more;
        }
        ssize_t n = read(fd, content + got, cap - got);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            e = errno;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (e) {
        free(content);
        if (e == ENOMEM)
            task_raise(t, e, "out of memory after %zu bytes", got);
        else
            task_raise(t, e, "%s", strerror(e));
        return;
    }
    int64_t count = count_word(content, got, j->word);
    free(content);
    task_return_i64(t, count);
}

#define USAGE "word_count [-w WORD] [-j WORKERS] FILE..."

int main(int argc, char **argv)
{
    const char *word = "error";
    long long workers = 0;
    static const struct option longopts[] = {COURSE_HELP_OPTION, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "w:j:h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return course_usage(USAGE, 0);
        if (opt == 'w')
            word = optarg;
        else if (opt != 'j' || !course_number(optarg, 0, 4096, "-j", &workers))
            return course_usage(USAGE, 2);
    }
    int n = argc - optind;
    if (n < 1)
        return course_usage(USAGE, 2);
    char *lower = strdup(word);
    struct job *jobs = calloc((size_t)n, sizeof(*jobs));
    const void **args = calloc((size_t)n, sizeof(*args));
    if (!lower || !jobs || !args) {
        perror("word_count");
        free(args);
        free(jobs);
        free(lower);
        return 1;
    }
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (int i = 0; i < n; i++) {
        jobs[i] = (struct job){.path = argv[optind + i], .word = lower};
        args[i] = &jobs[i];
    }

    int rc = 0;
    executor_t *ex = course_executor("thread", (int)workers, NULL);
    executor_map_t *counts =
        ex ? executor_map(ex, count_word_in_file, args, NULL, (size_t)n, NULL) : NULL;
    if (!counts)
        rc = 1;
    for (int i = 0; counts && i < n; i++) {
        const void *data;
        size_t len;
        int r = executor_map_next(counts, &data, &len); /* counts = await gather */
        if (r == 0 && len == sizeof(int64_t)) {
            int64_t c;
            memcpy(&c, data, sizeof(c));
            printf("File: %s, Count: %lld\n", jobs[i].path, (long long)c);
        } else {
            /* the task's own exception, as gather re-raises it */
            const future_error_t *err = executor_map_error(counts);
            fprintf(stderr, "File: %s: %s\n", jobs[i].path,
                    err && err->message[0] ? err->message : future_strerror(r));
            rc = 1;
        }
    }
    executor_map_free(counts);
    executor_free(ex);
    free(args);
    free(jobs);
    free(lower);
    return rc;
}
