// ref_echo_uring: the plain io_uring echo server (liburing), for comparison with the AIO loop.
//
// Single thread, IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN when the kernel takes them
// (else COOP_TASKRUN, else none). Each connection has one request in flight:
//   recv -> send (the rest again after a short send) -> recv ...
// and the listener one accept. One io_uring_submit_and_wait per loop turn submits everything the
// previous turn's completions queued and waits for at least one completion.
//
// usage: ref_echo_uring PORT [ADDR] [MAX_CONNS]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#define BUF_SIZE 16384
#define SQ_ENTRIES 1024

enum state { ACCEPT, RECV, SEND };

struct conn {
    int fd;
    enum state st;
    size_t off, len; // output buf[off, len)
    char buf[BUF_SIZE];
};

static struct io_uring ring;
static size_t nconns, max_conns;

static struct io_uring_sqe* get_sqe(void) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    while (sqe == NULL) { // SQ full: flush it (rare, SQ_ENTRIES covers a normal turn)
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}
static void queue_accept(struct conn* l) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, l);
}
static void queue_recv(struct conn* c) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv(sqe, c->fd, c->buf, BUF_SIZE, 0);
    io_uring_sqe_set_data(sqe, c);
    c->st = RECV;
}
static void queue_send(struct conn* c) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, c);
    c->st = SEND;
}

static void complete(struct conn* c, int res) {
    switch (c->st) {
    case ACCEPT:
        if (res >= 0) {
            struct conn* n = nconns < max_conns ? malloc(sizeof *n) : NULL;
            if (n == NULL) {
                close(res);
            } else {
                int one = 1;
                setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                n->fd = res, nconns++;
                queue_recv(n);
            }
        }
        return queue_accept(c);
    case RECV:
        if (res == -EAGAIN || res == -EINTR)
            return queue_recv(c);
        if (res <= 0)
            break; // EOF or error
        c->off = 0, c->len = (size_t)res;
        return queue_send(c);
    case SEND:
        if (res == -EAGAIN || res == -EINTR)
            return queue_send(c);
        if (res < 0)
            break;
        c->off += (size_t)res;
        return c->off < c->len ? queue_send(c) : queue_recv(c);
    }
    close(c->fd);
    free(c);
    nconns--;
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
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
    max_conns = argc > 3 ? strtoul(argv[3], NULL, 10) : 4096;
    struct conn listener = {.st = ACCEPT};
    listener.fd = listen_on(argc > 2 ? argv[2] : "127.0.0.1", atoi(argv[1]));
    if (listener.fd < 0)
        return 1;
    // One request in flight per connection: a CQ of max_conns + 1 can never overflow.
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN, 0};
    static const char* names[] = {"SINGLE_ISSUER|DEFER_TASKRUN", "COOP_TASKRUN", "default"};
    int r = -EINVAL;
    for (unsigned i = 0; i < 3 && r == -EINVAL; i++) {
        struct io_uring_params p = {.flags = modes[i] | IORING_SETUP_CQSIZE,
                                    .cq_entries = (unsigned)(max_conns + 64)};
        r = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
        if (r == 0)
            fprintf(stderr, "io_uring setup: %s\n", names[i]);
    }
    if (r < 0) {
        fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-r));
        return 1;
    }
    queue_accept(&listener);
    for (;;) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-r));
            return 1;
        }
        struct io_uring_cqe* cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            complete(io_uring_cqe_get_data(cqe), cqe->res);
            n++;
        }
        io_uring_cq_advance(&ring, n);
    }
}
