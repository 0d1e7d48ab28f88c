// ref_client: closed-loop echo load generator (plain level-triggered epoll, single thread).
//
// N connections each send an S-byte message, wait for all S bytes to come back (every byte is
// checked against what was sent), and send the next one, for D seconds. Then it prints
//   requests R seconds T req/s X client_cpu_us/req U byte_errors E conn_errors C
// and exits 1 if no request completed or anything went wrong.
//
// usage: ref_client [-c CONNS=200] [-s SIZE=64] [-d SECONDS=5] HOST PORT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH 65536

struct conn {
    int fd, id;
    uint32_t seq;
    size_t sent, got;
    int want_out; // EPOLLOUT registered (after a short write)
    unsigned char* msg;
};

static int ep;
static size_t size;
static unsigned long requests, byte_errors, conn_errors;
static int active; // connections still running

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void set_events(struct conn* c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void drop(struct conn* c) {
    conn_errors++;
    close(c->fd);
    c->fd = -1;
    active--;
}

static void send_more(struct conn* c) {
    while (c->sent < size) {
        ssize_t n = write(c->fd, c->msg + c->sent, size - c->sent);
        if (n < 0) {
            if (errno != EAGAIN)
                return drop(c);
            if (!c->want_out)
                set_events(c, 1);
            return;
        }
        c->sent += (size_t)n;
    }
    if (c->want_out)
        set_events(c, 0);
}

static void start_request(struct conn* c) {
    c->seq++;
    unsigned char b = (unsigned char)(c->id * 31u + c->seq * 7u);
    for (size_t i = 0; i < size; i++)
        c->msg[i] = (unsigned char)(b + i * 13u);
    c->sent = c->got = 0;
    send_more(c);
}

int main(int argc, char** argv) {
    int nconns = 200, opt;
    double seconds = 5;
    size = 64;
    while ((opt = getopt(argc, argv, "c:s:d:")) != -1) {
        if (opt == 'c')
            nconns = atoi(optarg);
        else if (opt == 's')
            size = strtoul(optarg, NULL, 10);
        else if (opt == 'd')
            seconds = atof(optarg);
        else
            optind = argc + 1;
    }
    if (optind + 2 != argc || nconns <= 0 || size == 0) {
        fprintf(stderr, "usage: %s [-c CONNS] [-s SIZE] [-d SECONDS] HOST PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int r = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", argv[optind], gai_strerror(r));
        return 2;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn* conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char* msgs = malloc((size_t)nconns * size);
    static unsigned char scratch[SCRATCH];
    if (ep < 0 || conns == NULL || msgs == NULL)
        return 1;
    for (int i = 0; i < nconns; i++) {
        struct conn* c = &conns[i];
        c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c->fd, F_SETFL, O_NONBLOCK);
        c->id = i, c->msg = msgs + (size_t)i * size;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    freeaddrinfo(ai);
    double t0 = now(), end = t0 + seconds, t = t0;
    for (int i = 0; i < nconns; i++)
        start_request(&conns[i]);
    struct epoll_event evs[512];
    active = nconns;
    while (active > 0) {
        int n = epoll_wait(ep, evs, 512, 100);
        if (n < 0 && errno != EINTR)
            return 1;
        t = now();
        for (int i = 0; i < n; i++) {
            struct conn* c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[i].events & EPOLLOUT)
                send_more(c);
            if (c->fd < 0 || !(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            size_t want = size - c->got < SCRATCH ? size - c->got : SCRATCH;
            ssize_t got = read(c->fd, scratch, want);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                drop(c);
                continue;
            }
            if ((size_t)got > c->sent - c->got || memcmp(scratch, c->msg + c->got, got) != 0)
                for (ssize_t k = 0; k < got; k++) // count the bad bytes
                    byte_errors += c->got + k >= c->sent || scratch[k] != c->msg[c->got + k];
            c->got += (size_t)got;
            if (c->got < size)
                continue;
            requests++;
            if (t < end) {
                start_request(c);
            } else {
                close(c->fd);
                c->fd = -1;
                active--;
            }
        }
        if (t > end + 5) { // the server stopped answering
            fprintf(stderr, "timeout: %d connections still waiting\n", active);
            conn_errors += (unsigned long)active;
            break;
        }
    }
    double el = t - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    printf("requests %lu seconds %.3f req/s %.0f client_cpu_us/req %.2f byte_errors %lu "
           "conn_errors %lu\n",
           requests,
           el,
           (double)requests / el,
           requests ? 1e6 * cpu / (double)requests : 0.0,
           byte_errors,
           conn_errors);
    return requests > 0 && byte_errors == 0 && conn_errors == 0 ? 0 : 1;
}
