/*
 * etcdpy.transport._splice: forwards bytes between socket pairs on a thread of its own.
 *
 * Why: the one-port multiplexer (cmux.py) must hand every gRPC connection to grpc.aio,
 * which cannot adopt an accepted socket, so each byte crosses this process twice more.
 * Done in Python on the event loop that cost ~0.05-0.1 ms of CPU per request (a third of
 * what grpc.aio itself spends). Here the copying runs in one native thread that never
 * takes the GIL: epoll, recv, send, nothing else, on whichever core is free.
 *
 * Rules (the same as cmux.py's Python splice):
 * 1. No byte is lost or reordered: bytes a side cannot take yet wait in a buffer of that
 *    side, and the other side is not read until they are written (backpressure).
 * 2. Either side reaching EOF or an error closes both (HTTP/2 does not use half-close).
 * 3. The thread owns both descriptors of a pair from add() on and closes them itself;
 *    each closed pair's tag is queued and an eventfd is signalled, so the event loop can
 *    forget what it knew about the connection (drain_closed()).
 * Linux only (epoll, eventfd).
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 64
#define READS_PER_EVENT 4

struct pair;

typedef struct side {
    int fd;
    int idx;                /* 0: client, 1: upstream */
    int reading;            /* EPOLLIN wanted */
    char *pend;             /* bytes waiting to be written to fd */
    size_t pend_len, pend_off;
    struct pair *pair;
} side_t;

typedef struct pair {
    side_t s[2];
    long long tag;
    int closed;
    struct pair *prev, *next;   /* live pairs, guarded by mu */
    struct pair *next_dead;     /* closed during one epoll batch, freed after it */
    struct pair *next_pending;  /* added, not yet registered with epoll (guarded by mu) */
} pair_t;

typedef struct {
    PyObject_HEAD
    int epfd;
    int wakefd;                 /* eventfd: new pairs to register, or stop */
    int notifyfd;
    int started;
    int stopped;
    int stop_requested;         /* guarded by mu */
    pair_t *pending;            /* guarded by mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pair_t live;                /* sentinel of the live list */
    Py_ssize_t npairs;
    long long *closed_tags;
    size_t closed_len, closed_cap;
} Splicer;

static side_t *other(side_t *s) { return &s->pair->s[1 - s->idx]; }

static void watch(Splicer *sp, side_t *s) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (s->reading ? EPOLLIN : 0) | (s->pend ? EPOLLOUT : 0);
    ev.data.ptr = s;
    epoll_ctl(sp->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static void free_pair(pair_t *p) {
    for (int i = 0; i < 2; i++) {
        free(p->s[i].pend);
        p->s[i].pend = NULL;
    }
    free(p);
}

/* On the worker thread (or after it stopped): close both sides, report the tag. */
static void close_pair(Splicer *sp, pair_t *p, pair_t **dead) {
    if (p->closed)
        return;
    p->closed = 1;
    for (int i = 0; i < 2; i++) {
        epoll_ctl(sp->epfd, EPOLL_CTL_DEL, p->s[i].fd, NULL);
        close(p->s[i].fd);
        p->s[i].fd = -1;
    }
    pthread_mutex_lock(&sp->mu);
    p->prev->next = p->next;
    p->next->prev = p->prev;
    sp->npairs--;
    if (sp->closed_len == sp->closed_cap) {
        size_t cap = sp->closed_cap ? sp->closed_cap * 2 : 64;
        long long *t = realloc(sp->closed_tags, cap * sizeof *t);
        if (t != NULL) {
            sp->closed_tags = t;
            sp->closed_cap = cap;
        }
    }
    if (sp->closed_len < sp->closed_cap)
        sp->closed_tags[sp->closed_len++] = p->tag;
    pthread_mutex_unlock(&sp->mu);
    uint64_t one = 1;
    ssize_t r = write(sp->notifyfd, &one, sizeof one);
    (void)r;
    p->next_dead = *dead;
    *dead = p;
}

/* Write as much of buf as the socket takes now; -1 on a fatal error. */
static ssize_t send_some(int fd, const char *buf, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -1;
    }
    return (ssize_t)off;
}

/* Keep what `to` could not take; stop reading its peer until it is written. */
static int keep_pending(Splicer *sp, side_t *to, const char *buf, size_t len) {
    to->pend = malloc(len);
    if (to->pend == NULL)
        return -1;
    memcpy(to->pend, buf, len);
    to->pend_len = len;
    to->pend_off = 0;
    side_t *from = other(to);
    from->reading = 0;
    watch(sp, from);
    watch(sp, to);
    return 0;
}

static void on_readable(Splicer *sp, side_t *x, char *buf, pair_t **dead) {
    side_t *p = other(x);
    for (int round = 0; round < READS_PER_EVENT; round++) {
        ssize_t n = recv(x->fd, buf, BUF_SIZE, 0);
        if (n > 0) {
            ssize_t w = send_some(p->fd, buf, (size_t)n);
            if (w < 0) {
                close_pair(sp, x->pair, dead);
                return;
            }
            if (w < n) {
                if (keep_pending(sp, p, buf + w, (size_t)(n - w)) < 0)
                    close_pair(sp, x->pair, dead);
                return;
            }
            if (n < BUF_SIZE)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_pair(sp, x->pair, dead); /* EOF or error */
        return;
    }
}

static void on_writable(Splicer *sp, side_t *s, pair_t **dead) {
    ssize_t w = send_some(s->fd, s->pend + s->pend_off, s->pend_len - s->pend_off);
    if (w < 0) {
        close_pair(sp, s->pair, dead);
        return;
    }
    s->pend_off += (size_t)w;
    if (s->pend_off < s->pend_len)
        return;
    free(s->pend);
    s->pend = NULL;
    s->pend_len = s->pend_off = 0;
    watch(sp, s);
    side_t *from = other(s);
    from->reading = 1;
    watch(sp, from);
}

/* Register the pairs add() queued: only this thread touches epoll registrations of live
   pairs, so a pair cannot be closed while half registered. Returns 1 when asked to stop. */
static int take_pending(Splicer *sp, pair_t **dead) {
    uint64_t v;
    ssize_t r = read(sp->wakefd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&sp->mu);
    pair_t *p = sp->pending;
    sp->pending = NULL;
    int stop = sp->stop_requested;
    pthread_mutex_unlock(&sp->mu);
    while (p != NULL) {
        pair_t *next = p->next_pending;
        for (int i = 0; i < 2 && !p->closed; i++) {
            struct epoll_event ev;
            memset(&ev, 0, sizeof ev);
            side_t *s = &p->s[i];
            ev.events = (s->reading ? EPOLLIN : 0) | (s->pend ? EPOLLOUT : 0);
            ev.data.ptr = s;
            if (epoll_ctl(sp->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
                close_pair(sp, p, dead);
        }
        p = next;
    }
    return stop;
}

static void *worker(void *arg) {
    Splicer *sp = (Splicer *)arg;
    pthread_setname_np(pthread_self(), "cmux-splice");
    char *buf = malloc(BUF_SIZE);
    struct epoll_event evs[MAX_EVENTS];
    int stop = (buf == NULL);
    while (!stop) {
        int n = epoll_wait(sp->epfd, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        pair_t *dead = NULL;
        for (int i = 0; i < n; i++) {
            side_t *s = (side_t *)evs[i].data.ptr;
            if (s == NULL) {
                stop = take_pending(sp, &dead);
                continue;
            }
            if (s->pair->closed)
                continue;
            uint32_t e = evs[i].events;
            if ((e & EPOLLOUT) && s->pend != NULL)
                on_writable(sp, s, &dead);
            if (s->pair->closed)
                continue;
            if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (s->reading)
                    on_readable(sp, s, buf, &dead);
                else if (e & (EPOLLHUP | EPOLLERR))
                    close_pair(sp, s->pair, &dead);
            }
        }
        while (dead != NULL) {
            pair_t *next = dead->next_dead;
            free_pair(dead);
            dead = next;
        }
    }
    free(buf);
    return NULL;
}

/* ------------------------------------------------------------------ Python type */

static int Splicer_init(Splicer *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist))
        return -1;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "Splicer already started");
        return -1;
    }
    self->epfd = self->wakefd = self->notifyfd = -1;
    self->live.next = self->live.prev = &self->live;
    if (pthread_mutex_init(&self->mu, NULL) != 0) {
        PyErr_SetString(PyExc_OSError, "pthread_mutex_init failed");
        return -1;
    }
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    self->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->notifyfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->epfd < 0 || self->wakefd < 0 || self->notifyfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, self->wakefd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    /* Signals belong to Python's main thread: the worker blocks them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&self->thread, NULL, worker, self);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->started = 1;
    return 0;
}

static PyObject *Splicer_add(Splicer *self, PyObject *args) {
    int cfd, ufd;
    Py_buffer initial;
    long long tag;
    if (!PyArg_ParseTuple(args, "iiy*L", &cfd, &ufd, &initial, &tag))
        return NULL;
    if (!self->started || self->stopped) {
        PyBuffer_Release(&initial);
        PyErr_SetString(PyExc_RuntimeError, "Splicer is closed");
        return NULL;
    }
    pair_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        PyBuffer_Release(&initial);
        return PyErr_NoMemory();
    }
    p->tag = tag;
    int fds[2] = {cfd, ufd};
    for (int i = 0; i < 2; i++) {
        p->s[i].fd = fds[i];
        p->s[i].idx = i;
        p->s[i].reading = 1;
        p->s[i].pair = p;
    }
    /* The bytes already read from the client go to upstream first. */
    if (initial.len > 0) {
        ssize_t w = send_some(ufd, initial.buf, (size_t)initial.len);
        if (w < 0) {
            PyBuffer_Release(&initial);
            free(p);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (w < initial.len) {
            size_t rest = (size_t)(initial.len - w);
            p->s[1].pend = malloc(rest);
            if (p->s[1].pend == NULL) {
                PyBuffer_Release(&initial);
                free(p);
                return PyErr_NoMemory();
            }
            memcpy(p->s[1].pend, (char *)initial.buf + w, rest);
            p->s[1].pend_len = rest;
            p->s[0].reading = 0;
        }
    }
    PyBuffer_Release(&initial);
    pthread_mutex_lock(&self->mu);
    p->next = self->live.next;
    p->prev = &self->live;
    self->live.next->prev = p;
    self->live.next = p;
    self->npairs++;
    p->next_pending = self->pending;
    self->pending = p;
    pthread_mutex_unlock(&self->mu);
    uint64_t one = 1;
    ssize_t r = write(self->wakefd, &one, sizeof one);
    (void)r;
    Py_RETURN_NONE;
}

static PyObject *Splicer_drain_closed(Splicer *self, PyObject *Py_UNUSED(ignored)) {
    uint64_t v;
    if (self->notifyfd >= 0) {
        ssize_t r = read(self->notifyfd, &v, sizeof v);
        (void)r;
    }
    pthread_mutex_lock(&self->mu);
    size_t n = self->closed_len;
    long long *tags = NULL;
    if (n > 0) {
        tags = malloc(n * sizeof *tags);
        if (tags != NULL) {
            memcpy(tags, self->closed_tags, n * sizeof *tags);
            self->closed_len = 0;
        }
    }
    pthread_mutex_unlock(&self->mu);
    if (n > 0 && tags == NULL)
        return PyErr_NoMemory();
    PyObject *out = PyList_New((Py_ssize_t)n);
    if (out == NULL) {
        free(tags);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *t = PyLong_FromLongLong(tags[i]);
        if (t == NULL) {
            free(tags);
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    free(tags);
    return out;
}

static PyObject *Splicer_fileno(Splicer *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLong(self->notifyfd);
}

static PyObject *Splicer_count(Splicer *self, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&self->mu);
    Py_ssize_t n = self->npairs;
    pthread_mutex_unlock(&self->mu);
    return PyLong_FromSsize_t(n);
}

/* Stop the thread, close every pair's descriptors. Idempotent. */
static void splicer_stop(Splicer *self) {
    if (!self->started || self->stopped)
        return;
    self->stopped = 1;
    pthread_mutex_lock(&self->mu);
    self->stop_requested = 1;
    pthread_mutex_unlock(&self->mu);
    uint64_t one = 1;
    ssize_t r = write(self->wakefd, &one, sizeof one);
    (void)r;
    Py_BEGIN_ALLOW_THREADS
    pthread_join(self->thread, NULL);
    Py_END_ALLOW_THREADS
    pair_t *dead = NULL;
    while (self->live.next != &self->live)
        close_pair(self, self->live.next, &dead);
    while (dead != NULL) {
        pair_t *next = dead->next_dead;
        free_pair(dead);
        dead = next;
    }
}

static PyObject *Splicer_close(Splicer *self, PyObject *Py_UNUSED(ignored)) {
    splicer_stop(self);
    Py_RETURN_NONE;
}

static void Splicer_dealloc(Splicer *self) {
    splicer_stop(self);
    if (self->epfd >= 0)
        close(self->epfd);
    if (self->wakefd >= 0)
        close(self->wakefd);
    if (self->notifyfd >= 0)
        close(self->notifyfd);
    free(self->closed_tags);
    if (self->live.next != NULL)
        pthread_mutex_destroy(&self->mu);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Splicer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Splicer *self = (Splicer *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->epfd = self->wakefd = self->notifyfd = -1;
    return (PyObject *)self;
}

static PyMethodDef Splicer_methods[] = {
    {"add", (PyCFunction)Splicer_add, METH_VARARGS,
     "add(client_fd, upstream_fd, initial: bytes, tag: int): splice the pair from now on.\n"
     "On success the splicer owns both descriptors; on an exception the caller still does."},
    {"drain_closed", (PyCFunction)Splicer_drain_closed, METH_NOARGS,
     "Tags of the pairs closed since the last call (and reset fileno()'s readiness)."},
    {"fileno", (PyCFunction)Splicer_fileno, METH_NOARGS,
     "An eventfd that becomes readable when a pair has closed."},
    {"count", (PyCFunction)Splicer_count, METH_NOARGS, "Pairs being spliced now."},
    {"close", (PyCFunction)Splicer_close, METH_NOARGS,
     "Stop the thread and close every pair (idempotent)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SplicerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "etcdpy.transport._splice.Splicer",
    .tp_basicsize = sizeof(Splicer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Forwards bytes between socket pairs on a native thread (no GIL).",
    .tp_new = Splicer_new,
    .tp_init = (initproc)Splicer_init,
    .tp_dealloc = (destructor)Splicer_dealloc,
    .tp_methods = Splicer_methods,
};

static struct PyModuleDef splice_module = {
    PyModuleDef_HEAD_INIT, "_splice",
    "Native byte forwarding for the one-port multiplexer (see cmux.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__splice(void) {
    if (PyType_Ready(&SplicerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&splice_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SplicerType);
    if (PyModule_AddObject(m, "Splicer", (PyObject *)&SplicerType) < 0) {
        Py_DECREF(&SplicerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
