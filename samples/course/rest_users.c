/*
 * rest_users: the "Calling REST APIs Asynchronously" exercise. Fetch user
 * records as JSON over HTTP at once, and upsert them into SQLite.
 *
 *   async def fetch_user_data(session, user_id):
 *       url = f"https://api.example.com/users/{user_id}"
 *       async with session.get(url) as response:
 *           return await response.json()
 *
 *   async def update_user_in_db(db, user_data):
 *       async with db.execute("INSERT OR REPLACE INTO users (id, name, email) "
 *                             "VALUES (?, ?, ?)", (user_data['id'], ...)):
 *           await db.commit()
 *
 *   async def main():
 *       async with aiosqlite.connect("users.db") as db:
 *           await db.execute("CREATE TABLE IF NOT EXISTS users "
 *                            "(id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
 *           async with aiohttp.ClientSession() as session:
 *               fetch_tasks = [asyncio.create_task(fetch_user_data(session, i))
 *                              for i in user_ids]
 *               user_data_list = await asyncio.gather(*fetch_tasks)
 *               update_tasks = [... update_user_in_db(db, d) for d in user_data_list]
 *               await asyncio.gather(*update_tasks)
 *
 * The fetches are thread-pool tasks (libcurl, and jansson for .json()); each
 * returns a struct user that the future owns and frees. The writes happen
 * in the main thread as each fetch completes (as_completed), on the one
 * connection, in one transaction: aiosqlite, too, runs every statement on
 * one thread of its own, so the "concurrent" updates were serial anyway.
 * INSERT ... ON CONFLICT DO UPDATE is the upsert (INSERT OR REPLACE would
 * delete and re-insert the row).
 *
 * Usage: rest_users [-j WORKERS] BASE_URL DB_PATH COUNT
 * fetches BASE_URL/users/1 .. BASE_URL/users/COUNT; a user that cannot be
 * fetched is reported and the others are still stored (exit status 1).
 */
#include "course.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct request {
    char url[1024];
    long id;
};

struct user {
    int64_t id;
    char *name;
    char *email;
};

static void user_free(void *p)
{
    struct user *u = p;
    if (!u)
        return;
    free(u->name);
    free(u->email);
    free(u);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return fwrite(p, size, n, ud) * size; /* into a memstream */
}

/* The user's JSON object as a struct user, or NULL with *why set. */
static struct user *parse_user(const char *body, size_t len, const char **why)
{
    json_error_t jerr;
    json_t *o = json_loadb(body, len, 0, &jerr);
    json_t *id = json_object_get(o, "id"), *name = json_object_get(o, "name"),
           *email = json_object_get(o, "email");
    struct user *u = NULL;
    if (!o)
        *why = "the answer is not JSON";
    else if (!json_is_integer(id) || !json_is_string(name) || !json_is_string(email))
        *why = "the answer lacks id, name or email";
    else if ((u = calloc(1, sizeof(*u)))) {
        u->id = json_integer_value(id);
        u->name = strdup(json_string_value(name));
        u->email = strdup(json_string_value(email));
        if (!u->name || !u->email) {
            user_free(u);
            u = NULL;
        }
    }
    if (o && !u && !*why)
        *why = "out of memory";
    json_decref(o);
    return u;
}

/* fetch_user_data: GET the URL, return the parsed user. */
static void fetch_user_data(task_t *t)
{
    const struct request *r = task_arg(t, NULL);
    char *body = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&body, &len);
    CURL *c = curl_easy_init();
    if (!mem || !c) {
        task_raise(t, ENOMEM, "%s: out of memory", r->url);
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    fclose(mem);
    mem = NULL;
    if (rc != CURLE_OK) {
        task_raise(t, (int)rc, "%s: %s", r->url, curl_easy_strerror(rc));
        goto out;
    }
    const char *why = NULL;
    struct user *u = parse_user(body, len, &why); /* await response.json() */
    if (!u)
        task_raise(t, EPROTO, "%s: %s", r->url, why);
    else if (u->id != r->id) {
        task_raise(t, EPROTO, "%s: the answer is user %lld", r->url, (long long)u->id);
        user_free(u);
    } else {
        task_return(t, u, sizeof(*u), user_free); /* the future owns it now */
    }
out:
    if (mem)
        fclose(mem);
    free(body);
    curl_easy_cleanup(c);
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", sql, msg ? msg : "error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int update_user_in_db(sqlite3_stmt *upsert, const struct user *u)
{
    sqlite3_reset(upsert);
    sqlite3_bind_int64(upsert, 1, u->id);
    sqlite3_bind_text(upsert, 2, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(upsert, 3, u->email, -1, SQLITE_STATIC);
    return sqlite3_step(upsert) == SQLITE_DONE ? 0 : -1;
}

#define USAGE "rest_users [-j WORKERS] BASE_URL DB_PATH COUNT"

int main(int argc, char **argv)
{
    long long workers = 0, count = 0;
    static const struct option longopts[] = {COURSE_HELP_OPTION, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "j:h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return course_usage(USAGE, 0);
        if (opt != 'j' || !course_number(optarg, 0, 4096, "-j", &workers))
            return course_usage(USAGE, 2);
    }
    if (optind + 3 != argc)
        return course_usage(USAGE, 2);
    if (!course_number(argv[optind + 2], 1, 1000000, "COUNT", &count))
        return course_usage(USAGE, 2);
    const char *base = argv[optind], *path = argv[optind + 1];

    sqlite3 *db = NULL;
    sqlite3_stmt *upsert = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) { /* aiosqlite.connect("users.db") */
        fprintf(stderr, "sqlite: %s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    if (exec_sql(db, "CREATE TABLE IF NOT EXISTS users "
                     "(id INTEGER PRIMARY KEY, name TEXT, email TEXT)") != 0 ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO users (id, name, email) VALUES (?, ?, ?) "
                           "ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
                           "email = excluded.email",
                           -1, &upsert, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct request *reqs = calloc((size_t)count, sizeof(*reqs));
    future_t **fetch_tasks = calloc((size_t)count, sizeof(*fetch_tasks));
    executor_t *ex =
        reqs && fetch_tasks ? course_executor("thread", (int)workers, NULL) : NULL;
    int rc = ex ? 0 : 1;
    long fetched = 0, stored = 0, submitted = 0;
    for (long i = 0; ex && i < count; i++) {
        reqs[i].id = i + 1;
        snprintf(reqs[i].url, sizeof(reqs[i].url), "%s/users/%ld", base, i + 1);
        fetch_tasks[i] = executor_submit(ex, fetch_user_data, &reqs[i], 0);
        if (!fetch_tasks[i]) {
            fprintf(stderr, "submit: %s\n", future_strerror(-errno));
            rc = 1;
            break;
        }
        submitted++;
    }

    as_completed_t *it =
        ex ? as_completed_new(fetch_tasks, (size_t)submitted, FUT_FOREVER) : NULL;
    future_t *f;
    exec_sql(db, "BEGIN");
    while (it && as_completed_next(it, &f) == 0) {
        const void *data;
        const future_error_t *err = NULL;
        if (future_result(f, FUT_FOREVER, &data, NULL) == 0) {
            fetched++;
            if (update_user_in_db(upsert, data) == 0) {
                stored++;
            } else {
                fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
                rc = 1;
            }
        } else {
            future_exception(f, 0, &err);
            fprintf(stderr, "%s\n", err ? err->message : "a fetch failed");
            rc = 1;
        }
        future_unref(f);
    }
    if (exec_sql(db, "COMMIT") != 0)
        rc = 1;
    as_completed_free(it);
    for (long i = 0; i < submitted; i++)
        future_unref(fetch_tasks[i]);
    executor_free(ex);

    sqlite3_stmt *q = NULL;
    long rows = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM users", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        rows = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    printf("fetched %ld of %ld users, upserted %ld; %s holds %ld users\n", fetched, (long)count,
           stored, path, rows);
    sqlite3_finalize(upsert);
    sqlite3_close(db);
    free(fetch_tasks);
    free(reqs);
    curl_global_cleanup();
    return rc;
}
