/* A TCP relay that delays each direction by a fixed one-way time, for the benchmark's
 * distance rows: replicator -> this relay -> strait proxy -> mock cluster.
 *
 *   delay_relay [--delay-ms D] [--jitter-ms J] [--rate-mbps R] [--max-queue-mib N]
 *               --map LISTEN_IP:PORT=UPSTREAM_IP:PORT [more options] [--map ...] ...
 *
 * Options apply to the --map entries after them, so one process can relay several ports
 * with different delays (the source's brokers at 75 ms, the target's at 0). Once every
 * listener is bound it prints "READY" on stdout; it runs until killed.
 *
 * Each accepted connection dials its upstream, and then each direction has two threads:
 * a reader that reads up to 256 KiB at a time, stamps the chunk with the time it is due
 * (arrival + delay, +/- a uniform jitter of at most J ms, never before the chunk ahead of
 * it, so bytes stay in order) and queues it, and a writer that sleeps until the head of
 * the queue is due and writes it, with every other chunk due by then, in one writev.
 * A large read stays in the buffer it was read into; a small one (a request, say) is
 * copied into one of its own size. With --rate-mbps a direction also writes no faster
 * than R MiB/s (each chunk is due no sooner than the previous one's length at R after it).
 *
 * Bound: a reader stops reading while its direction holds N MiB (default 64) not yet
 * written, counting the buffers' allocated size, so the relay holds at most 2 x N MiB
 * (plus a 256 KiB read buffer per direction) per connection. That is a window: one
 * connection carries at most N MiB per one-way delay each way (64 MiB / 75 ms, about
 * 850 MiB/s), far above what a mock cluster serves; the sockets' own buffers come on top.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024) /* the most one read takes */
#define IOV 64               /* the most chunks one write sends */

struct settings {
    int64_t delay_ns, jitter_ns;
    double rate; /* bytes per second, 0: unlimited */
    size_t max_queue;
};

struct route {
    struct settings s;
    char listen[128], upstream[128];
    int fd;
};

struct chunk {
    struct chunk *next;
    int64_t due;
    size_t len;  /* 0: the reader saw the end of the stream */
    size_t size; /* allocated for data, what counts against the queue's bound */
    char data[];
};

struct conn;

struct direction {
    struct conn *conn;
    int in, out;
    pthread_mutex_t lock;
    pthread_cond_t filled, drained;
    struct chunk *head, *tail;
    size_t queued;
    int64_t last_due;
    unsigned seed;
};

struct conn {
    struct settings s;
    int client, upstream;
    atomic_int threads;
    atomic_int dead;
    struct direction dir[2];
};

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_until(int64_t at) {
    struct timespec t = {at / 1000000000, at % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}

/* Ends the connection both ways: wakes every thread blocked on a queue or a socket. */
static void kill_conn(struct conn *c) {
    if (atomic_exchange(&c->dead, 1))
        return;
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&c->dir[i].lock);
        pthread_cond_broadcast(&c->dir[i].filled);
        pthread_cond_broadcast(&c->dir[i].drained);
        pthread_mutex_unlock(&c->dir[i].lock);
    }
    shutdown(c->client, SHUT_RDWR);
    shutdown(c->upstream, SHUT_RDWR);
}

static void release(struct conn *c) {
    if (atomic_fetch_sub(&c->threads, 1) != 1)
        return;
    for (int i = 0; i < 2; i++) {
        struct direction *d = &c->dir[i];
        while (d->head) {
            struct chunk *k = d->head;
            d->head = k->next;
            free(k);
        }
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->filled);
        pthread_cond_destroy(&d->drained);
    }
    close(c->client);
    close(c->upstream);
    free(c);
}

static void enqueue(struct direction *d, struct chunk *k) {
    const struct settings *s = &d->conn->s;
    int64_t due = now_ns() + s->delay_ns;
    if (s->jitter_ns)
        due += (int64_t)((2.0 * rand_r(&d->seed) / RAND_MAX - 1.0) * (double)s->jitter_ns);
    if (due < d->last_due)
        due = d->last_due; /* jitter never reorders bytes */
    d->last_due = k->due = due;
    k->next = NULL;
    pthread_mutex_lock(&d->lock);
    if (d->tail)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
    d->queued += k->size;
    pthread_cond_signal(&d->filled);
    pthread_mutex_unlock(&d->lock);
}

static struct chunk *new_chunk(size_t size) {
    struct chunk *k = malloc(sizeof *k + size);
    if (!k) {
        perror("relay: malloc");
        exit(1);
    }
    k->size = size;
    return k;
}

static void *reader(void *arg) {
    struct direction *d = arg;
    struct conn *c = d->conn;
    struct chunk *big = new_chunk(CHUNK);
    for (;;) {
        pthread_mutex_lock(&d->lock);
        while (d->queued >= c->s.max_queue && !atomic_load(&c->dead))
            pthread_cond_wait(&d->drained, &d->lock);
        pthread_mutex_unlock(&d->lock);
        if (atomic_load(&c->dead))
            break;
        ssize_t n = read(d->in, big->data, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            kill_conn(c);
            break;
        }
        struct chunk *k;
        if ((size_t)n >= CHUNK / 8) { /* a large read is queued in the buffer it came in */
            k = big;
            big = new_chunk(CHUNK);
        } else { /* a small one is copied out, so a request does not hold 256 KiB while it waits */
            k = new_chunk((size_t)n);
            memcpy(k->data, big->data, (size_t)n);
        }
        k->len = (size_t)n;
        enqueue(d, k);
        if (n == 0)
            break; /* the end of the stream, passed on when due */
    }
    free(big);
    release(c);
    return NULL;
}

static void *writer(void *arg) {
    struct direction *d = arg;
    struct conn *c = d->conn;
    int64_t free_at = 0; /* --rate-mbps: when the previous chunk's length has passed */
    struct chunk *due[IOV];
    struct iovec iov[IOV];
    for (;;) {
        pthread_mutex_lock(&d->lock);
        while (!d->head && !atomic_load(&c->dead))
            pthread_cond_wait(&d->filled, &d->lock);
        struct chunk *k = atomic_load(&c->dead) ? NULL : d->head;
        pthread_mutex_unlock(&d->lock);
        if (!k)
            break;
        int64_t at = k->due > free_at ? k->due : free_at;
        if (at > now_ns())
            sleep_until(at);
        /* Every chunk due by now goes out in one write (the reader only appends behind the head). */
        int n = 0, end = 0;
        size_t bytes = 0;
        int64_t now = now_ns();
        pthread_mutex_lock(&d->lock);
        while (d->head && n < IOV && (n == 0 || (d->head->due <= now && c->s.rate <= 0))) {
            struct chunk *h = d->head;
            d->head = h->next;
            if (!d->head)
                d->tail = NULL;
            due[n] = h;
            iov[n].iov_base = h->data;
            iov[n++].iov_len = h->len;
            bytes += h->len;
            if (h->len == 0) {
                end = 1;
                break;
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (c->s.rate > 0)
            free_at = (at > now ? at : now) + (int64_t)(1e9 * (double)bytes / c->s.rate);
        size_t off = 0;
        int i = 0;
        while (off < bytes) {
            ssize_t w = writev(d->out, iov + i, n - i);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
            size_t left = (size_t)w;
            while (i < n && left >= iov[i].iov_len)
                left -= iov[i++].iov_len;
            if (i < n) { /* iov[i] went out in part */
                iov[i].iov_base = (char *)iov[i].iov_base + left;
                iov[i].iov_len -= left;
            }
        }
        size_t held = 0;
        for (int j = 0; j < n; j++) {
            held += due[j]->size;
            free(due[j]);
        }
        pthread_mutex_lock(&d->lock);
        d->queued -= held;
        pthread_cond_signal(&d->drained);
        pthread_mutex_unlock(&d->lock);
        if (off < bytes) {
            kill_conn(c);
            break;
        }
        if (end) {
            shutdown(d->out, SHUT_WR);
            break;
        }
    }
    release(c);
    return NULL;
}

static int parse_addr(const char *text, struct sockaddr_in *out) {
    char host[128];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static void spawn(void *(*fn)(void *), void *arg) {
    pthread_attr_t a;
    pthread_t t;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 128 * 1024);
    if (pthread_create(&t, &a, fn, arg)) {
        perror("relay: pthread_create");
        exit(1);
    }
    pthread_attr_destroy(&a);
}

static void *acceptor(void *arg) {
    struct route *r = arg;
    struct sockaddr_in up;
    parse_addr(r->upstream, &up);
    int one = 1;
    for (;;) {
        int client = accept(r->fd, NULL, NULL);
        if (client < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                usleep(100000); /* out of descriptors, say: back off rather than spin */
            continue;
        }
        int upstream = socket(AF_INET, SOCK_STREAM, 0);
        if (upstream < 0 || connect(upstream, (struct sockaddr *)&up, sizeof up)) {
            fprintf(stderr, "relay %s: dialling %s: %s\n", r->listen, r->upstream, strerror(errno));
            if (upstream >= 0)
                close(upstream);
            close(client);
            continue;
        }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        c->s = r->s;
        c->client = client;
        c->upstream = upstream;
        atomic_init(&c->threads, 4);
        for (int i = 0; i < 2; i++) {
            struct direction *d = &c->dir[i];
            d->conn = c;
            d->in = i ? upstream : client;
            d->out = i ? client : upstream;
            d->seed = (unsigned)(now_ns() ^ (i + 1) * 2654435761u);
            pthread_mutex_init(&d->lock, NULL);
            pthread_cond_init(&d->filled, NULL);
            pthread_cond_init(&d->drained, NULL);
        }
        for (int i = 0; i < 2; i++) {
            spawn(writer, &c->dir[i]);
            spawn(reader, &c->dir[i]);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    struct settings s = {0, 0, 0, (size_t)64 << 20};
    struct route *routes = calloc((size_t)argc, sizeof *routes);
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "relay: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--delay-ms"))
            s.delay_ns = (int64_t)(atof(v) * 1e6);
        else if (!strcmp(argv[i - 1], "--jitter-ms"))
            s.jitter_ns = (int64_t)(atof(v) * 1e6);
        else if (!strcmp(argv[i - 1], "--rate-mbps"))
            s.rate = atof(v) * 1048576.0;
        else if (!strcmp(argv[i - 1], "--max-queue-mib"))
            s.max_queue = (size_t)(atof(v) * 1048576.0);
        else if (!strcmp(argv[i - 1], "--map")) {
            const char *eq = strchr(v, '=');
            struct sockaddr_in a, b;
            if (!eq || (size_t)(eq - v) >= sizeof routes[n].listen || strlen(eq + 1) >= sizeof routes[n].upstream) {
                fprintf(stderr, "relay: --map takes LISTEN_IP:PORT=UPSTREAM_IP:PORT, not %s\n", v);
                return 2;
            }
            memcpy(routes[n].listen, v, (size_t)(eq - v));
            strcpy(routes[n].upstream, eq + 1);
            if (parse_addr(routes[n].listen, &a) || parse_addr(routes[n].upstream, &b)) {
                fprintf(stderr, "relay: --map takes IPv4 addresses, not %s\n", v);
                return 2;
            }
            routes[n].s = s;
            int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 1024)) {
                fprintf(stderr, "relay: listening on %s: %s\n", routes[n].listen, strerror(errno));
                return 1;
            }
            routes[n++].fd = fd;
        } else {
            fprintf(stderr, "relay: unknown option %s\n", argv[i - 1]);
            return 2;
        }
    }
    if (!n) {
        fprintf(stderr, "usage: %s [--delay-ms D] [--jitter-ms J] [--rate-mbps R] [--max-queue-mib N] "
                        "--map LISTEN_IP:PORT=UPSTREAM_IP:PORT ...\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "relay: %s -> %s, %.1f ms +/- %.1f ms one way%s\n", routes[i].listen, routes[i].upstream,
                routes[i].s.delay_ns / 1e6, routes[i].s.jitter_ns / 1e6, routes[i].s.rate > 0 ? ", rate-capped" : "");
        spawn(acceptor, &routes[i]);
    }
    printf("READY\n");
    fflush(stdout);
    for (;;)
        pause();
}
