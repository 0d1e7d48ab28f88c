// ref_echo_epoll: the plain epoll echo server aioloop is measured against.
//
// Single thread, one listening socket, edge-triggered epoll with every fd registered once for
// EPOLLIN|EPOLLOUT|EPOLLRDHUP (never an epoll_ctl per request). A readable connection is read
// until EAGAIN or a short read (a stream socket is drained then, see epoll(7)), and each chunk is
// written straight back; a short write parks the rest until EPOLLOUT. EOF or any error closes.
//
// usage: ref_echo_epoll PORT [ADDR]   (ADDR defaults to 127.0.0.1; "::1" works too)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 16384
#define MAX_EVENTS 512

struct conn {
    int fd;
    int readable;    // an EPOLLIN edge not yet drained
    int rdhup;       // peer shut down: read until 0, a short read proves nothing
    size_t off, len; // pending output buf[off, len)
    char buf[BUF_SIZE];
};

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

static void close_conn(struct conn* c) {
    close(c->fd); // also removes it from the epoll set
    free(c);
}

// Flush pending output, then read and echo while the socket has data. Returns -1 to close.
static int serve(struct conn* c) {
    for (;;) {
        while (c->off < c->len) {
            ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
            if (n < 0)
                return errno == EAGAIN ? 0 : -1; // EPOLLOUT edge will resume us
            c->off += (size_t)n;
        }
        if (!c->readable)
            return 0;
        ssize_t n = read(c->fd, c->buf, BUF_SIZE);
        if (n < 0) {
            if (errno != EAGAIN)
                return -1;
            c->readable = 0;
            return 0;
        }
        if (n == 0)
            return -1;
        if (n < BUF_SIZE && !c->rdhup)
            c->readable = 0; // short read: drained, skip the EAGAIN read
        c->off = 0, c->len = (size_t)n;
    }
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [ADDR]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(argc > 2 ? argv[2] : "127.0.0.1", atoi(argv[1]));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("setup");
        return 1;
    }
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn* c = evs[i].data.ptr;
            if (c == NULL) { // listener (level-triggered): accept the whole backlog
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
                    ev.data.ptr = c;
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                        close_conn(c);
                }
                continue;
            }
            uint32_t e = evs[i].events;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->readable = 1; // errors surface from read()
            if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->rdhup = 1;
            if (serve(c) < 0)
                close_conn(c);
        }
    }
}
