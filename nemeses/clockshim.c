/*
 * jepsy clock shim: skews the wall clock of one dynamically linked process.
 *
 * Loaded with LD_PRELOAD=clockshim.so and JEPSY_CLOCK_FILE=<path>, it
 * intercepts clock_gettime / gettimeofday / time / timespec_get and adds an
 * offset to every CLOCK_REALTIME-like reading.  Monotonic clocks are left
 * alone (they are read through the raw syscall too, never through libc).
 *
 * The offset comes from JEPSY_CLOCK_FILE, re-read at most every 100 ms, so
 * the jepsy clock nemesis changes the skew of a running daemon by rewriting
 * that file.  The file holds whitespace-separated decimal numbers, seconds:
 *
 *     OFFSET [DELTA PERIOD UNTIL]
 *
 * OFFSET is added always (signed, fractional).  With the optional strobe
 * fields, while the real time is before UNTIL (absolute epoch seconds),
 * DELTA is added as well during every other PERIOD-long slice of real time:
 * the clock jumps back and forth.  A missing or unreadable file means no
 * skew.
 *
 * Why not libfaketime: it calls into the dynamic loader and malloc while
 * initialising, which recurses with jemalloc (redis hangs).  This shim uses
 * no malloc, no stdio, no dlsym: raw syscalls only, a static buffer and a
 * seqlock, so it is safe at any point of a process's life and in any thread.
 *
 * Limits: programs that read the clock through the vDSO directly (Go
 * binaries such as etcd) or statically linked ones never call these
 * functions and are not affected.
 *
 * Build: gcc -O2 -shared -fPIC -o clockshim.so clockshim.c
 */
#define _GNU_SOURCE
/* Hide libc's prototypes so ours (whose parameter types vary between glibc
 * versions) do not clash with them. */
#define clock_gettime jepsy_hidden_clock_gettime
#define gettimeofday jepsy_hidden_gettimeofday
#define time jepsy_hidden_time
#define timespec_get jepsy_hidden_timespec_get
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#undef clock_gettime
#undef gettimeofday
#undef time
#undef timespec_get

#define NS 1000000000LL
#define REFRESH_NS (100 * 1000000LL)

struct params {
    int64_t offset;   /* ns */
    int64_t delta;    /* ns, strobe */
    int64_t period;   /* ns, strobe; 0 = no strobe */
    int64_t until;    /* real epoch ns, strobe end */
};

static struct params g_params;
static unsigned g_seq;          /* seqlock: odd while g_params is written */
static char g_busy;             /* one refresher at a time */
static int64_t g_next_refresh;  /* monotonic ns */

static int raw_clock(clockid_t clk, struct timespec *ts) {
    return (int)syscall(SYS_clock_gettime, clk, ts);
}

static int64_t mono_ns(void) {
    struct timespec ts;
    if (raw_clock(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Parse one signed decimal number of seconds at *p into ns; 0 if none. */
static int parse_seconds(const char **p, const char *end, int64_t *out) {
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++;
    if (s >= end) return 0;
    int neg = 0;
    if (*s == '-' || *s == '+') { neg = (*s == '-'); s++; }
    int64_t whole = 0, frac = 0, scale = NS;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (whole < 100000000000LL) whole = whole * 10 + (*s - '0');
        s++; digits++;
    }
    if (s < end && *s == '.') {
        s++;
        while (s < end && *s >= '0' && *s <= '9') {
            if (scale > 1) { scale /= 10; frac += (*s - '0') * scale; }
            s++; digits++;
        }
    }
    if (!digits) return 0;
    *p = s;
    int64_t v = whole * NS + frac;
    *out = neg ? -v : v;
    return 1;
}

static void refresh(void) {
    struct params p = {0, 0, 0, 0};
    const char *path = getenv("JEPSY_CLOCK_FILE");
    if (path && *path) {
        char buf[256];
        int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
            syscall(SYS_close, fd);
            if (n > 0) {
                const char *s = buf, *end = buf + n;
                int64_t v[4] = {0, 0, 0, 0};
                int k = 0;
                while (k < 4 && parse_seconds(&s, end, &v[k])) k++;
                p.offset = v[0];
                if (k == 4 && v[2] > 0) {
                    p.delta = v[1];
                    p.period = v[2];
                    p.until = v[3];
                }
            }
        }
    }
    __atomic_add_fetch(&g_seq, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&g_params.offset, p.offset, __ATOMIC_RELAXED);
    __atomic_store_n(&g_params.delta, p.delta, __ATOMIC_RELAXED);
    __atomic_store_n(&g_params.period, p.period, __ATOMIC_RELAXED);
    __atomic_store_n(&g_params.until, p.until, __ATOMIC_RELAXED);
    __atomic_add_fetch(&g_seq, 1, __ATOMIC_ACQ_REL);
}

static struct params current(void) {
    int64_t now = mono_ns();
    if (now >= __atomic_load_n(&g_next_refresh, __ATOMIC_RELAXED) &&
        !__atomic_test_and_set(&g_busy, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&g_next_refresh, now + REFRESH_NS, __ATOMIC_RELAXED);
        refresh();
        __atomic_clear(&g_busy, __ATOMIC_RELEASE);
    }
    struct params p = {0, 0, 0, 0};
    for (int tries = 0; tries < 1000; tries++) {
        unsigned s1 = __atomic_load_n(&g_seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) continue;
        p.offset = __atomic_load_n(&g_params.offset, __ATOMIC_RELAXED);
        p.delta = __atomic_load_n(&g_params.delta, __ATOMIC_RELAXED);
        p.period = __atomic_load_n(&g_params.period, __ATOMIC_RELAXED);
        p.until = __atomic_load_n(&g_params.until, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&g_seq, __ATOMIC_RELAXED) == s1) break;
    }
    return p;
}

static int is_realtime(clockid_t clk) {
    return clk == CLOCK_REALTIME
#ifdef CLOCK_REALTIME_COARSE
        || clk == CLOCK_REALTIME_COARSE
#endif
#ifdef CLOCK_REALTIME_ALARM
        || clk == CLOCK_REALTIME_ALARM
#endif
#ifdef CLOCK_TAI
        || clk == CLOCK_TAI
#endif
        ;
}

static void skew(struct timespec *ts) {
    int64_t real = (int64_t)ts->tv_sec * NS + ts->tv_nsec;
    struct params p = current();
    int64_t off = p.offset;
    if (p.period > 0 && real < p.until && ((real / p.period) & 1)) off += p.delta;
    int64_t t = real + off;
    int64_t sec = t / NS, nsec = t % NS;
    if (nsec < 0) { nsec += NS; sec -= 1; }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)nsec;
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
    int r = raw_clock(clk, ts);
    if (r == 0 && ts && is_realtime(clk)) skew(ts);
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    if (raw_clock(CLOCK_REALTIME, &ts) != 0) return -1;
    skew(&ts);
    if (tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    if (tz) {
        int *z = (int *)tz; /* struct timezone: two ints, always zero on Linux */
        z[0] = 0;
        z[1] = 0;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (raw_clock(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    skew(&ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}

int timespec_get(struct timespec *ts, int base) {
    if (base != TIME_UTC || !ts) return 0;
    if (raw_clock(CLOCK_REALTIME, ts) != 0) return 0;
    skew(ts);
    return base;
}
