/*
 * temp_getter: TempGetter, one thread per Canadian city asking a weather
 * service for the temperature, then every answer in the cities' order.
 *
 *   CITIES = ['Edmonton', 'Victoria', 'Winnipeg', 'Fredericton',
 *             "St. John's", 'Halifax', 'Toronto', 'Charlottetown',
 *             'Quebec City', 'Regina']
 *   class TempGetter(Thread):
 *       def __init__(self, city):
 *           super().__init__()
 *           self.city = city
 *       def run(self):
 *           url_template = ('http://api.openweathermap.org/data/2.5/'
 *                           'weather?q={},CA&units=metric')
 *           response = urlopen(url_template.format(self.city))
 *           data = json.loads(response.read().decode())
 *           self.temperature = data['main']['temp']
 *
 *   threads = [TempGetter(c) for c in CITIES]
 *   start = time.time()
 *   for thread in threads: thread.start()
 *   for thread in threads: thread.join()
 *   for thread in threads:
 *       print("it is {0.temperature:.0f}°C in {0.city}".format(thread))
 *   print("Got {} temps in {} seconds".format(len(threads), time.time() - start))
 *
 * The service's address is the first argument, not the internet's (the
 * test serves fixture data on loopback): BASE_URL/data/2.5/weather?q=...
 * A Thread subclass with its result on self becomes a task that returns
 * the temperature (8 bytes of double); urlopen is libcurl and json.loads
 * is jansson. A city whose request fails is reported, where Python's
 * thread dies and the print loop raises AttributeError; "Got N temps"
 * counts only the temperatures that came (len(threads) when all do).
 * --serial is the course's "running on one thread instead": a pool of one.
 *
 * Usage: temp_getter [--serial] BASE_URL | URL_TEMPLATE
 * A URL_TEMPLATE holds "{}" where the city goes, as url_template does:
 *   temp_getter 'http://127.0.0.1:8080/data/2.5/weather?q={},CA&units=metric'
 */
#include "course.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>

static const char *const CITIES[] = {
    "Edmonton", "Victoria", "Winnipeg",      "Fredericton", "St. John's",
    "Halifax",  "Toronto",  "Charlottetown", "Quebec City", "Regina"};
#define N_CITIES (sizeof(CITIES) / sizeof(CITIES[0]))

static const char *base_url; /* immutable once main set it */

struct body {
    char data[65536];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t add = size * n;
    if (b->len + add >= sizeof(b->data))
        return 0; /* a weather answer is small; more is an error */
    memcpy(b->data + b->len, p, add);
    b->len += add;
    return add;
}

/* TempGetter.run: the temperature in one city. */
static void temp_getter(task_t *t)
{
    const char *city = task_arg(t, NULL);
    struct body *b = calloc(1, sizeof(*b));
    CURL *c = curl_easy_init();
    char *q = c ? curl_easy_escape(c, city, 0) : NULL;
    char url[1024];
    if (!b || !q) {
        task_raise(t, ENOMEM, "%s: out of memory", city);
        goto out;
    }
    const char *slot = strstr(base_url, "{}"); /* url_template.format(self.city) */
    if (slot)
        snprintf(url, sizeof(url), "%.*s%s%s", (int)(slot - base_url), base_url, q,
                 slot + 2);
    else
        snprintf(url, sizeof(url), "%s/data/2.5/weather?q=%s,CA&units=metric", base_url,
                 q);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L); /* urlopen raises on 4xx/5xx */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        task_raise(t, (int)rc, "%s: %s", city, curl_easy_strerror(rc));
        goto out;
    }
    json_error_t jerr;
    json_t *data = json_loadb(b->data, b->len, 0, &jerr); /* json.loads */
    json_t *temp = json_object_get(json_object_get(data, "main"), "temp");
    if (!json_is_number(temp))
        task_raise(t, EPROTO, "%s: no main.temp in the answer%s%s", city,
                   data ? "" : ": ", data ? "" : jerr.text);
    else
        task_return_copy(t, &(double){json_number_value(temp)}, sizeof(double));
    json_decref(data);
out:
    curl_free(q);
    curl_easy_cleanup(c);
    free(b);
}

int main(int argc, char **argv)
{
    static const char usage[] = "temp_getter [--serial] BASE_URL|URL_TEMPLATE";
    if (course_help_asked(argc, argv))
        return course_usage(usage, 0);
    bool serial = argc == 3 && strcmp(argv[1], "--serial") == 0;
    if (argc != 2 + serial || argv[argc - 1][0] == '-')
        return course_usage(usage, 2);
    base_url = argv[argc - 1];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    executor_t *ex = course_executor("thread", serial ? 1 : (int)N_CITIES, NULL);
    if (!ex)
        return 1;

    future_t *threads[N_CITIES];
    double start = course_now();
    for (size_t i = 0; i < N_CITIES; i++) /* thread.start() */
        threads[i] = executor_submit(ex, temp_getter, CITIES[i], strlen(CITIES[i]) + 1);
    int rc = 0;
    size_t got = 0;
    for (size_t i = 0; i < N_CITIES; i++) {
        const void *data;
        size_t len;
        const future_error_t *err = NULL;
        if (!threads[i]) {
            fprintf(stderr, "%s: %s\n", CITIES[i], future_strerror(-errno));
            rc = 1;
        } else if (future_result(threads[i], FUT_FOREVER, &data, &len) == 0 &&
                   len == sizeof(double)) {
            double temperature;
            memcpy(&temperature, data, sizeof(temperature));
            printf("it is %.0f\u00b0C in %s\n", temperature, CITIES[i]);
            got++;
        } else {
            future_exception(threads[i], 0, &err);
            fprintf(stderr, "TempGetter: %s\n", err ? err->message : "no temperature");
            rc = 1;
        }
        future_unref(threads[i]);
    }
    printf("Got %zu temps in %f seconds\n", got, course_now() - start);
    executor_free(ex);
    curl_global_cleanup();
    return rc;
}
