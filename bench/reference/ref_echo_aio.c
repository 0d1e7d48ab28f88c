// ref_echo_aio: the plain Linux AIO echo server (io_submit + IOCB_CMD_POLL, no libaio).
//
// Single thread. Each connection has exactly one iocb in flight, so its one struct iocb is reused:
//   POLL(POLLIN) -> PREAD -> PWRITE -> POLL(POLLIN) ...   (a full-buffer read PREADs again, a
//   short write waits on POLL(POLLOUT)). Every iocb queued during a loop turn goes to the kernel
//   in one io_submit; PREAD/PWRITE on sockets complete inside it. Completions are reaped from the
//   AIO ring mapped at the context address; io_getevents is called only to block on an empty ring.
//
// usage: ref_echo_aio PORT [ADDR] [MAX_CONNS]   (SIGINT/SIGTERM print counters to stderr)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BUF_SIZE 16384
#define MAX_EVENTS 1024
#define AIO_RING_MAGIC 0xa10a10a1u

struct aio_ring { // the kernel's completion ring header (fs/aio.c), followed by the events
    unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
    struct io_event io_events[];
};

enum state { ST_POLLIN, ST_READ, ST_WRITE, ST_POLLOUT, ST_LISTEN };

struct conn {
    struct iocb cb;
    int fd;
    enum state st;
    int full;        // last read filled the buffer: more is probably waiting
    size_t off, len; // output buf[off, len)
    char buf[BUF_SIZE];
};

static aio_context_t ctx;
static struct iocb** queue; // iocbs to submit this turn (at most one per connection)
static size_t nqueue, nconns, max_conns;
static unsigned long n_submit, n_getevents, ev_ring, ev_syscall;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    stop = sig;
}

static void queue_op(struct conn* c, enum state st, int opcode, void* buf, size_t n) {
    memset(&c->cb, 0, sizeof c->cb);
    c->cb.aio_data = (uint64_t)(uintptr_t)c;
    c->cb.aio_fildes = (uint32_t)c->fd;
    c->cb.aio_lio_opcode = (uint16_t)opcode;
    c->cb.aio_buf = (uint64_t)(uintptr_t)buf;
    c->cb.aio_nbytes = n;
    c->st = st;
    queue[nqueue++] = &c->cb;
}
static void queue_poll(struct conn* c, enum state st, short events) {
    queue_op(c, st, IOCB_CMD_POLL, NULL, 0);
    c->cb.aio_buf = (uint64_t)events;
}
static void close_conn(struct conn* c) {
    close(c->fd);
    free(c);
    nconns--;
}

static void submit_queue(void) {
    size_t off = 0;
    while (off < nqueue) {
        long r = syscall(SYS_io_submit, ctx, (long)(nqueue - off), queue + off);
        n_submit++;
        if (r > 0) {
            off += (size_t)r;
        } else if (errno == EAGAIN || errno == EINTR) {
            break; // keep the rest for the next turn
        } else {   // this iocb was refused: drop its connection
            struct conn* c = (struct conn*)(uintptr_t)queue[off++]->aio_data;
            if (c->st == ST_LISTEN) {
                perror("io_submit(listener)");
                exit(1);
            }
            close_conn(c);
        }
    }
    memmove(queue, queue + off, (nqueue - off) * sizeof *queue);
    nqueue -= off;
}

// Copy up to max completions out of the ring; no system call.
static unsigned reap_ring(struct aio_ring* ring, struct io_event* out, unsigned max) {
    unsigned head = ring->head, tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE), n = 0;
    while (head != tail && n < max) {
        out[n++] = ring->io_events[head];
        head = head + 1 == ring->nr ? 0 : head + 1;
    }
    if (n)
        __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
    return n;
}

static void accept_all(struct conn* l) {
    int fd;
    while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct conn* c = nconns < max_conns ? malloc(sizeof *c) : NULL;
        if (c == NULL) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd, c->full = 0, nconns++;
        queue_poll(c, ST_POLLIN, POLLIN);
    }
    queue_poll(l, ST_LISTEN, POLLIN);
}

static void complete(struct conn* c, long res) {
    switch (c->st) {
    case ST_LISTEN:
        accept_all(c);
        return;
    case ST_POLLIN:
        if (res > 0 && (res & POLLIN))
            return queue_op(c, ST_READ, IOCB_CMD_PREAD, c->buf, BUF_SIZE);
        break; // error, or POLLERR/POLLHUP with nothing to read
    case ST_READ:
        if (res == -EAGAIN)
            return queue_poll(c, ST_POLLIN, POLLIN);
        if (res <= 0)
            break; // EOF or error
        c->off = 0, c->len = (size_t)res, c->full = res == BUF_SIZE;
        return queue_op(c, ST_WRITE, IOCB_CMD_PWRITE, c->buf, c->len);
    case ST_WRITE:
        if (res == -EAGAIN)
            return queue_poll(c, ST_POLLOUT, POLLOUT);
        if (res < 0)
            break;
        c->off += (size_t)res;
        if (c->off < c->len)
            return queue_poll(c, ST_POLLOUT, POLLOUT);
        if (c->full)
            return queue_op(c, ST_READ, IOCB_CMD_PREAD, c->buf, BUF_SIZE);
        return queue_poll(c, ST_POLLIN, POLLIN);
    case ST_POLLOUT:
        if (res > 0 && (res & POLLOUT))
            return queue_op(c, ST_WRITE, IOCB_CMD_PWRITE, c->buf + c->off, c->len - c->off);
        break;
    }
    close_conn(c);
}

static int listen_on(const char* addr, int port) {
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in* s4 = (struct sockaddr_in*)&ss;
    struct sockaddr_in6* s6 = (struct sockaddr_in6*)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET, s4->sin_port = htons(port), sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6, s6->sin6_port = htons(port), sl = sizeof *s6;
    } else {
        fprintf(stderr, "bad address %s\n", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr*)&ss, sl) < 0 || listen(fd, 4096) < 0) {
        perror("listen");
        return -1;
    }
    return fd;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [ADDR] [MAX_CONNS]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal}; // no SA_RESTART: io_getevents gets EINTR
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    max_conns = argc > 3 ? strtoul(argv[3], NULL, 10) : 4096;
    struct conn listener = {.st = ST_LISTEN};
    listener.fd = listen_on(argc > 2 ? argv[2] : "127.0.0.1", atoi(argv[1]));
    queue = calloc(max_conns + 1, sizeof *queue);
    if (listener.fd < 0 || queue == NULL)
        return 1;
    if (syscall(SYS_io_setup, (unsigned)(2 * max_conns + 64), &ctx) < 0) {
        perror("io_setup");
        return 1;
    }
    struct aio_ring* ring = (struct aio_ring*)(uintptr_t)ctx;
    if (ring->magic != AIO_RING_MAGIC || ring->incompat_features != 0 ||
        ring->header_length != sizeof(struct aio_ring)) {
        fprintf(stderr, "unknown AIO ring layout\n");
        return 1;
    }
    static struct io_event evs[MAX_EVENTS];
    queue_poll(&listener, ST_LISTEN, POLLIN);
    while (!stop) {
        if (nqueue)
            submit_queue();
        long n = reap_ring(ring, evs, MAX_EVENTS);
        ev_ring += (unsigned long)n;
        if (n == 0) { // ring empty: block until something completes
            n = syscall(SYS_io_getevents, ctx, 1L, (long)MAX_EVENTS, evs, NULL);
            n_getevents++;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                perror("io_getevents");
                return 1;
            }
            ev_syscall += (unsigned long)n;
        }
        for (long i = 0; i < n; i++)
            complete((struct conn*)(uintptr_t)evs[i].data, (long)evs[i].res);
    }
    fprintf(stderr,
            "io_submit %lu io_getevents %lu events: ring %lu syscall %lu (%.2f%% from ring)\n",
            n_submit,
            n_getevents,
            ev_ring,
            ev_syscall,
            100.0 * (double)ev_ring / (double)(ev_ring + ev_syscall ? ev_ring + ev_syscall : 1));
    return 0;
}
