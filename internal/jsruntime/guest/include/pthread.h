/* The runtime is single-threaded (wasm32-wasi without threads), and this
 * wasi-libc has no pthread.h: QuickJS's Atomics.wait/notify only need these
 * names, and no other thread can ever wake a waiter, so a wait returns as
 * timed out at once. */
#ifndef AEROFN_PTHREAD_H
#define AEROFN_PTHREAD_H
#include <errno.h>
#include <time.h>
typedef struct { int unused; } pthread_mutex_t;
typedef struct { int unused; } pthread_cond_t;
#define PTHREAD_MUTEX_INITIALIZER {0}
static inline int pthread_mutex_lock(pthread_mutex_t *m) { (void)m; return 0; }
static inline int pthread_mutex_unlock(pthread_mutex_t *m) { (void)m; return 0; }
static inline int pthread_cond_init(pthread_cond_t *c, const void *a) { (void)c; (void)a; return 0; }
static inline int pthread_cond_destroy(pthread_cond_t *c) { (void)c; return 0; }
static inline int pthread_cond_signal(pthread_cond_t *c) { (void)c; return 0; }
static inline int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) { (void)c; (void)m; return 0; }
static inline int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
    (void)c; (void)m; (void)t;
    return ETIMEDOUT;
}
#endif
