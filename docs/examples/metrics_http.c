/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * docs/examples/metrics_http.c — a tiny HTTP server on the netpoller that
 * serves the runtime's counters at /metrics in Prometheus text format
 * (urg_stats_format), the way a Go program serves promhttp.
 *
 * One task per connection, as in Go's net/http: the main task accepts with
 * urg_accept and spawns a handler, which reads the request with urg_read
 * and answers with urg_write; a task waiting for bytes parks, its thread
 * runs other tasks. HTTP/1.0 only: one request, then close.
 *
 * usage: example_metrics_http [--port N] [--requests N]
 *   --port 0 (the default) takes an ephemeral port; the first line printed
 *   is "listening on 127.0.0.1:PORT". --requests N serves N connections and
 *   exits 0 (what the urgent.example_metrics_http test uses); without it,
 *   it serves until killed. Try: curl http://127.0.0.1:PORT/metrics
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <urgent.h>

static int port;
static long requests = -1; /* connections to serve; -1: forever */
static urg_wg handlers;

/* respond writes one whole HTTP/1.0 response. */
static void respond(int fd, const char *status, const char *type, const char *body, size_t n)
{
    char head[256];
    int h = snprintf(head, sizeof(head),
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, type, n);
    if (urg_write(fd, head, (size_t)h) == h && n > 0)
        urg_write(fd, body, n);
}

/* serve handles one connection; the descriptor comes in arg. */
static void serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[2048];
    size_t got = 0;
    /* Read until the end of the headers (or a full buffer or EOF). */
    while (got < sizeof(req) - 1) {
        ssize_t r = urg_read(fd, req + got, sizeof(req) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[got] = '\0';
    if (strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0) {
        /* Size the text, then write it: +64 for counters that gained a
         * digit in between. */
        int need = urg_stats_format(NULL, 0, URG_STATS_PROMETHEUS);
        char *body = need > 0 ? malloc((size_t)need + 64) : NULL;
        int n = body ? urg_stats_format(body, (size_t)need + 64, URG_STATS_PROMETHEUS) : -1;
        if (n >= 0 && n < need + 64)
            respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, (size_t)n);
        else
            respond(fd, "500 Internal Server Error", "text/plain", "no memory\n", 10);
        free(body);
    } else if (strncmp(req, "GET ", 4) == 0) {
        respond(fd, "404 Not Found", "text/plain", "try /metrics\n", 13);
    } else {
        respond(fd, "400 Bad Request", "text/plain", "bad request\n", 12);
    }
    urg_close(fd);
    urg_wg_done(&handlers);
}

static void main_task(void *arg)
{
    (void)arg;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 64) < 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
        perror("bind/listen");
        exit(1);
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    urg_wg_init(&handlers);
    for (long served = 0; requests < 0 || served < requests; served++) {
        int fd = urg_accept(ls, NULL, NULL);
        if (fd < 0) {
            fprintf(stderr, "accept: %s\n", strerror(-fd));
            break;
        }
        urg_wg_add(&handlers, 1);
        if (urg_go(serve, (void *)(intptr_t)fd) < 0) {
            urg_close(fd);
            urg_wg_done(&handlers);
        }
    }
    urg_wg_wait(&handlers);
    urg_close(ls);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) {
            port = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--requests") == 0) {
            requests = atol(argv[i + 1]);
        } else {
            fprintf(stderr, "usage: %s [--port N] [--requests N]\n", argv[0]);
            return 2;
        }
    }
    if ((argc - 1) % 2 != 0 || port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s [--port N] [--requests N]\n", argv[0]);
        return 2;
    }
    int r = urg_run(main_task, NULL, NULL);
    if (r < 0) {
        fprintf(stderr, "urg_run: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
