/* Unusual allocation patterns, one per mode, to compare allocators side by side
 * (LD_PRELOAD). Usage: cliffs MODE [scale]. Prints a checksum so no work is elided. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static volatile uint64_t sink;

static void grow1(long n) { /* one buffer grown 1 byte at a time */
    char *p = NULL;
    for (long i = 1; i <= n; i++) { p = realloc(p, i); p[i - 1] = (char)i; }
    sink += p[n / 2]; free(p);
}
static void growmany(long n) { /* 1000 buffers grown 1 byte at a time, interleaved */
    enum { B = 1000 }; static char *p[B];
    for (long i = 1; i <= n; i++)
        for (int b = 0; b < B; b++) { p[b] = realloc(p[b], i); p[b][i - 1] = 1; }
    for (int b = 0; b < B; b++) { sink += p[b][0]; free(p[b]); }
}
static void growdouble(long n) { /* many buffers doubled up to n bytes, repeatedly */
    for (int r = 0; r < 20; r++) {
        enum { B = 64 }; char *p[B] = {0};
        for (size_t s = 16; s <= (size_t)n; s *= 2)
            for (int b = 0; b < B; b++) { p[b] = realloc(p[b], s); memset(p[b] + s / 2, 1, s / 2); }
        for (int b = 0; b < B; b++) free(p[b]);
    }
}
static void shrink(long n) { /* big block shrunk step by step, repeatedly */
    for (int r = 0; r < 200; r++) {
        char *p = malloc(n); memset(p, 1, n);
        for (size_t s = n; s > 16; s = s * 7 / 8) { p = realloc(p, s); p[s - 1] = 2; }
        sink += p[0]; free(p);
    }
}
static void shrinkkeep(long n) { /* many blocks malloc'd big and shrunk to a few bytes, kept */
    enum { B = 2000 }; static char *p[B];
    for (int b = 0; b < B; b++) { p[b] = malloc(n); memset(p[b], 1, 4096); p[b] = realloc(p[b], 32); }
    malloc_stats(); for (int b = 0; b < B; b++) free(p[b]);
}
static void aligned(long n) { /* alignments 64 B .. 2 MiB, odd sizes */
    for (long i = 0; i < n; i++) {
        size_t al = (size_t)64 << (rnd() % 16), sz = 1 + rnd() % 100000;
        void *p; if (posix_memalign(&p, al, sz)) abort();
        if ((uintptr_t)p & (al - 1)) abort();
        ((char *)p)[sz - 1] = 1; free(p);
    }
}
static void alignkeep(long n) { /* memalign churn with 1000 live */
    enum { B = 1000 }; static void *p[B];
    for (long i = 0; i < n; i++) {
        int k = rnd() % B; free(p[k]);
        size_t al = (size_t)16 << (rnd() % 10), sz = 1 + rnd() % 5000;
        p[k] = memalign(al, sz); memset(p[k], 1, sz < 64 ? sz : 64);
    }
    for (int b = 0; b < B; b++) free(p[b]);
}
static void alignbig(long n) { /* 2 MiB-aligned 2 MiB blocks, keep 50 live */
    enum { B = 50 }; static void *p[B];
    for (long i = 0; i < n; i++) {
        int k = i % B; free(p[k]); p[k] = aligned_alloc(2 << 20, 2 << 20); memset(p[k], 1, 4096);
    }
    for (int b = 0; b < B; b++) free(p[b]);
}
static void callocbig(long n) { /* calloc of 8 MiB, freed, repeatedly */
    for (long i = 0; i < n; i++) { char *p = calloc(1, 8 << 20); p[i % (8 << 20)] = 1; sink += p[4096]; free(p); }
}
static void callocmid(long n) { /* calloc of 200 KiB, touched fully, freed */
    for (long i = 0; i < n; i++) { char *p = calloc(1, 200 << 10); memset(p, 1, 200 << 10); free(p); }
}
static void straddle(long n) { /* just above/below the medium/large threshold */
    size_t s[4] = {65536 - 16, 65536, 65536 + 16, 131072 + 8};
    for (long i = 0; i < n; i++) { char *p = malloc(s[i & 3]); p[0] = 1; p[s[i & 3] - 1] = 1; free(p); }
}
static void straddlekeep(long n) { /* same with one block kept live, alternating */
    size_t s[3] = {65536 + 16, 300000, 1 << 20};
    char *q = NULL;
    for (long i = 0; i < n; i++) { char *p = malloc(s[i % 3]); memset(p, 1, 4096); free(q); q = p; }
    free(q);
}
static void one(long size) { /* one block of a size malloc'd and freed in a loop */
    for (long i = 0; i < 3000000; i++) { char *p = malloc(size); p[0] = 1; p[size - 1] = 1; free(p); }
}
static void trimloop(long n) {
    void *keep = malloc(100);
    for (long i = 0; i < n; i++) { void *p = malloc(1000); sink += malloc_usable_size(p); free(p); if (i % 100 == 0) malloc_trim(0); }
    free(keep);
}
static void usable(long n) {
    enum { B = 1000 }; static void *p[B];
    for (int b = 0; b < B; b++) p[b] = malloc(1 + rnd() % 200000);
    for (long i = 0; i < n; i++) sink += malloc_usable_size(p[i % B]);
    for (int b = 0; b < B; b++) free(p[b]);
}
static void order(long n, int how) { /* 10^6 blocks freed in reverse or random order */
    void **p = malloc(n * sizeof *p);
    for (int r = 0; r < 5; r++) {
        for (long i = 0; i < n; i++) { p[i] = malloc(16 + rnd() % 200); *(char *)p[i] = 1; }
        if (how == 2) for (long i = n - 1; i > 0; i--) { long j = rnd() % (i + 1); void *t = p[i]; p[i] = p[j]; p[j] = t; }
        if (how == 1) for (long i = n - 1; i >= 0; i--) free(p[i]);
        else for (long i = 0; i < n; i++) free(p[i]);
    }
    free(p);
}
static void frag(long n) { /* n MiB of mixed sizes, free every other, allocate another class */
    long total = n << 20, cnt = 0; void **p = malloc((total / 16) * sizeof *p);
    for (long b = 0; b < total; cnt++) { size_t s = 16 + rnd() % 1000; p[cnt] = malloc(s); memset(p[cnt], 1, s); b += s; }
    for (long i = 0; i < cnt; i += 2) free(p[i]);
    for (long b = 0, i = 0; b < total / 2; i += 2) { size_t s = 2000 + rnd() % 2000; p[i] = malloc(s); memset(p[i], 1, s); b += s; }
    malloc_stats();
}
/* threads */
#define QN 64
static void *volatile q[QN]; static volatile long qh, qt; static long tn; static size_t tsz;
static void *producer(void *a) {
    (void)a;
    for (long i = 0; i < tn; i++) {
        while (qh - qt >= QN) sched_yield();
        size_t s = tsz + (rnd() % 4) * 4096; char *p = malloc(s); memset(p, 1, s < 65536 ? s : 65536);
        q[qh % QN] = p; __atomic_store_n(&qh, qh + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}
static void *consumer(void *a) {
    (void)a;
    for (long i = 0; i < tn; i++) {
        while (__atomic_load_n(&qh, __ATOMIC_ACQUIRE) == qt) sched_yield();
        free(q[qt % QN]); __atomic_store_n(&qt, qt + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}
static void prodcons(long n, size_t sz) {
    pthread_t a, b; tn = n; tsz = sz;
    pthread_create(&a, NULL, producer, NULL); pthread_create(&b, NULL, consumer, NULL);
    pthread_join(a, NULL); pthread_join(b, NULL);
}
static void *volatile big_q[1 << 16]; static volatile long bq_n;
static void *hoarder(void *a) { /* allocates, never frees; hands everything to the freer */
    (void)a; for (long i = 0; i < tn; i++) { void *p = malloc(16 + i % 256); *(char *)p = 1; big_q[i & 0xffff] = p;
        __atomic_store_n(&bq_n, i + 1, __ATOMIC_RELEASE); while (i + 1 - __atomic_load_n(&qt, __ATOMIC_ACQUIRE) > 60000) sched_yield(); }
    return NULL;
}
static void *freer(void *a) {
    (void)a; for (long i = 0; i < tn; i++) { while (__atomic_load_n(&bq_n, __ATOMIC_ACQUIRE) <= i) sched_yield();
        free(big_q[i & 0xffff]); __atomic_store_n(&qt, i + 1, __ATOMIC_RELEASE); }
    return NULL;
}
static void backlog(long n) { pthread_t a, b; tn = n; qt = 0;
    pthread_create(&a, NULL, hoarder, NULL); pthread_create(&b, NULL, freer, NULL);
    pthread_join(a, NULL); pthread_join(b, NULL); }

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    long n = argc > 2 ? atol(argv[2]) : 0;
#define M(name, def, call) if (!strcmp(m, name)) { if (!n) n = def; call; printf("%s %lu\n", m, (unsigned long)sink); return 0; }
    M("grow1", 4 << 20, grow1(n)) M("growmany", 4096, growmany(n)) M("growdouble", 16 << 20, growdouble(n))
    M("shrink", 4 << 20, shrink(n)) M("shrinkkeep", 1 << 20, shrinkkeep(n))
    M("aligned", 200000, aligned(n)) M("alignkeep", 2000000, alignkeep(n)) M("alignbig", 20000, alignbig(n))
    M("callocbig", 2000, callocbig(n)) M("callocmid", 100000, callocmid(n))
    M("straddle", 2000000, straddle(n)) M("straddlekeep", 300000, straddlekeep(n))
    M("one", 32768, one(n)) M("trim", 200000, trimloop(n)) M("usable", 20000000, usable(n))
    M("fwd", 1000000, order(n, 0)) M("rev", 1000000, order(n, 1)) M("rand", 1000000, order(n, 2))
    M("frag", 1024, frag(n))
    M("pcsmall", 2000000, prodcons(n, 64)) M("pcbig", 200000, prodcons(n, 100000)) M("pchuge", 20000, prodcons(n, 4 << 20))
    M("backlog", 20000000, backlog(n))
    fprintf(stderr, "unknown mode\n"); return 2;
}
