/*
 * thumbnail_maker: the course's Thumbnail Maker. Download images (I/O
 * bound: a thread pool), resize each to 32, 64 and 200 pixels wide keeping
 * its aspect ratio (CPU bound: a process pool), write the thumbnails (I/O
 * bound: the thread pool again), and say how long each stage took.
 *
 * The course describes it in words: "download the images from some form
 * of file store ... to the application server, perform the resizing and
 * then re-upload the resized image". Its Python shape:
 *
 *   def make_thumbnails(self, img_url_list):
 *       with ThreadPoolExecutor() as io:
 *           images = list(io.map(download_image, img_url_list))
 *       with ProcessPoolExecutor() as cpu:
 *           thumbs = list(cpu.map(resize_image, jobs))  # (image bytes, size)
 *       with ThreadPoolExecutor() as io:
 *           list(io.map(write_thumbnail, thumbs))
 *
 * libvips does the imaging (vips_thumbnail_buffer, PNG out). A process
 * pool worker starts libvips in the pool's initializer (Python's
 * initializer=), after the fork, so no worker inherits libvips' threads
 * half made; the parent never starts libvips when it resizes on
 * processes. Image bytes go to the worker and PNG bytes come back, where
 * Python would pickle PIL images. Without a process pool in this cfutures
 * (or with -e thread) the resize runs on threads: in C they run at once.
 *
 * Usage:
 *   thumbnail_maker --generate DIR [-n COUNT]   writes COUNT test images
 *       (img01.png ..., 1200 to 1680 pixels wide, gradients) into DIR
 *   thumbnail_maker [-e process|thread] -o OUTDIR URL...
 *       URL may be http://, or file:// for images on disk; the thumbnails
 *       are OUTDIR/NAME_32.png, NAME_64.png and NAME_200.png (two URLs
 *       with one NAME are refused: see check_names). OUTDIR is
 *       made first if missing, as the original's os.makedirs(output_dir,
 *       exist_ok=True); one that cannot be used stops it before any download.
 */
#include "course.h"

#include <ctype.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

static const int SIZES[] = {32, 64, 200};
#define N_SIZES (sizeof(SIZES) / sizeof(SIZES[0]))

/* ------------------------------------------------------------ generate */

/* A gradient of @w x @h pixels in three bands, as PNG at @path. */
static int generate_one(const char *path, int w, int h)
{
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 7);
    int rc = vips_xyz(&t[0], w, h, NULL) || vips_extract_band(t[0], &t[1], 0, NULL) ||
             vips_extract_band(t[0], &t[2], 1, NULL) ||
             vips_linear1(t[1], &t[3], 255.0 / w, 0.0, NULL) ||
             vips_linear1(t[2], &t[4], 255.0 / h, 0.0, NULL) ||
             vips_bandjoin_const1(t[3], &t[5], 96.0, NULL) ||
             vips_bandjoin2(t[5], t[4], &t[6], NULL);
    VipsImage *rgb = NULL;
    if (!rc)
        rc = vips_cast_uchar(t[6], &rgb, NULL) ||
             vips_image_write_to_file(rgb, path, NULL);
    if (rgb)
        g_object_unref(rgb);
    g_object_unref(base);
    return rc ? -1 : 0;
}

static int generate(const char *dir, int count)
{
    for (int i = 1; i <= count; i++) {
        char path[4096];
        int w = 1200 + 160 * (i % 4), h = 900 + 120 * (i % 3);
        snprintf(path, sizeof(path), "%s/img%02d.png", dir, i);
        if (generate_one(path, w, h) != 0) {
            fprintf(stderr, "%s: %s", path, vips_error_buffer());
            return 1;
        }
        printf("%s %dx%d\n", path, w, h);
    }
    return 0;
}

/* ------------------------------------------------------------ download */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return fwrite(p, size, n, ud) * size;
}

/* download_image(url): the image's bytes. */
static void download_image(task_t *t)
{
    const char *url = task_arg(t, NULL);
    char *body = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&body, &len);
    CURL *c = curl_easy_init();
    if (!mem || !c) {
        if (mem)
            fclose(mem);
        free(body);
        curl_easy_cleanup(c);
        task_raise(t, ENOMEM, "%s: out of memory", url);
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    fclose(mem);
    if (rc != CURLE_OK) {
        free(body);
        task_raise(t, (int)rc, "%s: %s", url, curl_easy_strerror(rc));
        return;
    }
    task_return(t, body, len, free);
}

/* -------------------------------------------------------------- resize */

/* A resize job on the wire: the width, then the image's bytes. */
struct resize_job {
    int32_t width;
    unsigned char image[];
};

/* The process pool's initializer: libvips, once per worker, one thread. */
static void vips_worker_init(task_t *t)
{
    if (VIPS_INIT("thumbnail_maker")) {
        task_raise(t, EIO, "vips_init: %s", vips_error_buffer());
        return;
    }
    vips_concurrency_set(1); /* the pool is the parallelism */
}

/* resize_image((image, width)): PNG bytes of the thumbnail. */
static void resize_image(task_t *t)
{
    size_t len;
    const struct resize_job *job = task_arg(t, &len);
    VipsImage *out = NULL;
    void *png = NULL;
    size_t png_len = 0;
    if (len < sizeof(*job)) {
        task_raise(t, EINVAL, "resize_image: no image");
        return;
    }
    /* Exactly @width wide; the height follows the aspect ratio. */
    if (vips_thumbnail_buffer((void *)job->image, len - sizeof(*job), &out, job->width,
                              "height", VIPS_MAX_COORD, NULL) ||
        vips_image_write_to_buffer(out, ".png", &png, &png_len, NULL)) {
        /* libvips ends each of its messages with a newline: not ours to keep. */
        const char *why = vips_error_buffer();
        int n = (int)strlen(why);
        while (n > 0 && isspace((unsigned char)why[n - 1]))
            n--;
        task_raise(t, EIO, "resize to %d: %.*s", job->width, n, why);
        vips_error_clear();
    } else {
        task_return(t, png, png_len, g_free);
    }
    if (out)
        g_object_unref(out);
}

/* --------------------------------------------------------------- write */

struct thumb {
    char path[4096];
    const void *data; /* borrowed from the resize future */
    size_t len;
};

/* write_thumbnail(thumb): the re-upload, to a folder here. */
static void write_thumbnail(task_t *t)
{
    const struct thumb *th = task_arg(t, NULL);
    FILE *f = fopen(th->path, "wb");
    if (!f || fwrite(th->data, 1, th->len, f) != th->len) {
        int e = errno;
        if (f)
            fclose(f);
        task_raise(t, e, "%s: %s", th->path, strerror(e));
        return;
    }
    if (fclose(f) != 0)
        task_raise(t, errno, "%s: %s", th->path, strerror(errno));
}

/* ---------------------------------------------------------------- main */

/* os.makedirs(@dir, exist_ok=True), then a folder we can write in? 0, or -1
 * with errno. */
static int make_outdir(const char *dir)
{
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return -1;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return access(path, W_OK | X_OK);
}

/* Runs @fn over @n arguments on @ex; puts each future in @out. */
static int run_all(executor_t *ex, task_fn fn, const void *const *args,
                   const size_t *lens, size_t n, future_t **out)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = executor_submit(ex, fn, args[i], lens ? lens[i] : 0);
        if (!out[i]) {
            fprintf(stderr, "submit: %s\n", future_strerror(-errno));
            rc = 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const future_error_t *err = NULL;
        if (out[i] && future_result(out[i], FUT_FOREVER, NULL, NULL) != 0) {
            future_exception(out[i], 0, &err);
            fprintf(stderr, "%s\n", err ? err->message : future_strerror(FUT_ECANCELLED));
            rc = 1;
        }
    }
    return rc;
}

/* "http://host/a/img01.png?x" -> "img01" */
static void stem(const char *url, char *out, size_t cap)
{
    const char *slash = strrchr(url, '/');
    const char *b = slash ? slash + 1 : url;
    size_t n = strcspn(b, "?#");
    const char *dot = memrchr(b, '.', n);
    if (dot && dot > b)
        n = (size_t)(dot - b);
    snprintf(out, cap, "%.*s", (int)n, n ? b : "image");
}

/*
 * Two URLs whose names have one stem ("a/img01.png" and "b/img01.jpg")
 * would write the same thumbnails. The original saves each download under
 * its file name in one folder, so there the second silently replaces the
 * first; we keep its NAME_SIZE.png names and refuse, before any download.
 * 0, or -1 said on stderr.
 */
static int check_names(char **urls, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        char a[256], b[256];
        stem(urls[i], a, sizeof(a));
        for (size_t k = 0; k < i; k++) {
            stem(urls[k], b, sizeof(b));
            if (strcmp(a, b) == 0) {
                fprintf(stderr,
                        "thumbnail_maker: %s and %s would both make %s_%d.png ...: "
                        "give each image its own name\n",
                        urls[k], urls[i], a, SIZES[0]);
                return -1;
            }
        }
    }
    return 0;
}

static void unref_all(future_t **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        future_unref(fs[i]);
}

static int make_thumbnails(const char *kind, const char *outdir, char **urls, size_t n)
{
    size_t nt = n * N_SIZES;
    future_t **images = calloc(n, sizeof(*images));
    future_t **thumbs = calloc(nt, sizeof(*thumbs));
    future_t **writes = calloc(nt, sizeof(*writes));
    const void **args = calloc(nt, sizeof(*args));
    size_t *lens = calloc(nt, sizeof(*lens));
    struct resize_job **jobs = calloc(nt, sizeof(*jobs));
    struct thumb *out = calloc(nt, sizeof(*out));
    executor_t *io = NULL, *cpu = NULL;
    int rc = 1;
    if (!images || !thumbs || !writes || !args || !lens || !jobs || !out)
        goto done;

    /* The process pool first: its fork server forks before any thread. */
    if (strcmp(kind, "thread") == 0 && VIPS_INIT("thumbnail_maker")) {
        fprintf(stderr, "vips_init: %s", vips_error_buffer());
        goto done;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu = course_executor(kind, cpus > 0 ? (int)cpus : 1,
                          strcmp(kind, "process") == 0
                              ? &(executor_options_t){.initializer = vips_worker_init}
                              : NULL);
    io = course_executor("thread", 8, NULL);
    if (!cpu || !io)
        goto done;

    double t0 = course_now();
    for (size_t i = 0; i < n; i++)
        args[i] = urls[i];
    rc = run_all(io, download_image, args, NULL, n, images);
    size_t bytes = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const void *data;
        size_t len;
        future_result(images[i], 0, &data, &len);
        bytes += len;
        for (size_t s = 0; s < N_SIZES; s++) {
            struct resize_job *j = malloc(sizeof(*j) + len);
            if (!j) {
                rc = 1;
                break;
            }
            j->width = SIZES[s];
            memcpy(j->image, data, len);
            jobs[i * N_SIZES + s] = j;
            args[i * N_SIZES + s] = j;
            lens[i * N_SIZES + s] = sizeof(*j) + len;
        }
    }
    double t1 = course_now();
    if (rc != 0)
        goto done;
    printf("downloaded %zu images (%zu bytes) in %.3f s on a thread pool of 8\n", n,
           bytes, t1 - t0);

    rc = run_all(cpu, resize_image, args, lens, nt, thumbs);
    double t2 = course_now();
    if (rc != 0)
        goto done;
    printf("resized them to %zu thumbnails in %.3f s on a %s pool of %ld\n", nt, t2 - t1,
           kind, cpus > 0 ? cpus : 1);

    for (size_t i = 0; i < nt; i++) {
        char name[256];
        stem(urls[i / N_SIZES], name, sizeof(name));
        snprintf(out[i].path, sizeof(out[i].path), "%s/%s_%d.png", outdir, name,
                 SIZES[i % N_SIZES]);
        future_result(thumbs[i], 0, &out[i].data, &out[i].len);
        args[i] = &out[i];
    }
    rc = run_all(io, write_thumbnail, args, NULL, nt, writes);
    double t3 = course_now();
    if (rc == 0)
        printf("wrote %zu thumbnails to %s in %.3f s; %.3f s in all\n", nt, outdir,
               t3 - t2, t3 - t0);
done:
    executor_free(io);
    executor_free(cpu);
    if (images)
        unref_all(images, n);
    if (thumbs)
        unref_all(thumbs, nt);
    if (writes)
        unref_all(writes, nt);
    for (size_t i = 0; jobs && i < nt; i++)
        free(jobs[i]);
    free(images);
    free(thumbs);
    free(writes);
    free(args);
    free(lens);
    free(jobs);
    free(out);
    return rc;
}

#define USAGE                                                                            \
    "thumbnail_maker [-e process|thread] -o OUTDIR URL...\n"                             \
    "       thumbnail_maker --generate DIR [-n 1..99]"

int main(int argc, char **argv)
{
    const char *kind = course_have_process_pool() ? "process" : "thread";
    const char *outdir = NULL, *gen = NULL;
    long long count = 8;
    static const struct option longopts[] = {
        {"generate", required_argument, NULL, 'g'}, COURSE_HELP_OPTION, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "e:o:n:h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case 'e':
            kind = optarg;
            ok = course_kind(kind, false);
            break;
        case 'o':
            outdir = optarg;
            break;
        case 'n':
            ok = course_number(optarg, 1, 99, "-n", &count);
            break;
        case 'g':
            gen = optarg;
            break;
        case 'h':
            return course_usage(USAGE, 0);
        default:
            ok = false;
        }
        if (!ok)
            return course_usage(USAGE, 2);
    }
    if (gen) {
        if (optind != argc)
            return course_usage(USAGE, 2);
        if (VIPS_INIT(argv[0])) {
            fprintf(stderr, "vips_init: %s", vips_error_buffer());
            return 1;
        }
        int rc = generate(gen, (int)count);
        vips_shutdown();
        return rc;
    }
    if (!outdir || optind >= argc)
        return course_usage(USAGE, 2);
    if (check_names(argv + optind, (size_t)(argc - optind)) != 0)
        return 2;
    if (make_outdir(outdir) != 0) {
        fprintf(stderr, "thumbnail_maker: cannot write thumbnails in %s: %s\n", outdir,
                strerror(errno));
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = make_thumbnails(kind, outdir, argv + optind, (size_t)(argc - optind));
    if (strcmp(kind, "thread") == 0)
        vips_shutdown();
    curl_global_cleanup();
    return rc;
}
