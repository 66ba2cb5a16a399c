/* SPDX-License-Identifier: MIT */
/*
 * Per-client connection and rate limits in shared memory; see ratelimit.h
 * for the design and its bounds.
 */

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <openssl/evp.h>

#include "ratelimit.h"
#include "macro.h"

typedef struct LimitsSlot {
        bool used;
        LimitsKey key;
        bool bucket_set;   /* false: the bucket is full (never used) */
        int64_t tokens;    /* thousandths of a token */
        uint64_t stamp_ms; /* when tokens was computed */
        double rate;       /* of the last take, to judge idleness */
        unsigned burst;
} LimitsSlot;

struct LimitsTable {
        pthread_mutex_t lock;
        unsigned n_slots;
        unsigned n_columns;
        size_t map_size;
        uint64_t now_ms; /* latest time seen, to judge a bucket full */
        uint8_t hash_key[16]; /* SipHash key, random per table */
        LimitsSlot *slots;
        uint32_t *counts; /* [column * n_slots + slot] */
};

int limits_new(unsigned n_slots, unsigned n_columns, LimitsTable **ret) {
        pthread_mutexattr_t attr;
        size_t size;
        void *m;
        int r;

        if (n_slots == 0)
                n_slots = LIMITS_DEFAULT_SLOTS;
        if ((n_slots & (n_slots - 1)) != 0 || n_slots < LIMITS_PROBE || n_slots > LIMITS_MAX_SLOTS ||
            n_columns == 0 || n_columns > 4096)
                return -EINVAL;

        size = sizeof(LimitsTable) + (size_t)n_slots * sizeof(LimitsSlot) +
               (size_t)n_slots * n_columns * sizeof(uint32_t);
        m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return negative_errno();

        /* Anonymous memory is zero: every slot unused, every count 0. */
        LimitsTable *t = m;
        t->n_slots = n_slots;
        t->n_columns = n_columns;
        t->map_size = size;
        t->slots = (LimitsSlot *)(t + 1);
        t->counts = (uint32_t *)(t->slots + n_slots);
        /* 16 bytes: getrandom() never returns fewer (at most 256 asked). */
        if (getrandom(t->hash_key, sizeof(t->hash_key), 0) != (ssize_t)sizeof(t->hash_key)) {
                r = negative_errno();
                (void)munmap(m, size);
                return r;
        }

        r = -pthread_mutexattr_init(&attr);
        if (r == 0)
                r = -pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (r == 0)
                r = -pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        if (r == 0)
                r = -pthread_mutex_init(&t->lock, &attr);
        (void)pthread_mutexattr_destroy(&attr);
        if (r < 0) {
                (void)munmap(m, size);
                return r;
        }
        *ret = t;
        return 0;
}

void limits_free(LimitsTable *t) {
        if (t)
                (void)munmap(t, t->map_size);
}

static void table_lock(LimitsTable *t) {
        int r = pthread_mutex_lock(&t->lock);
        /* A worker died holding the lock: its half-done update is at worst
         * one count or one token off, and its column is reset anyway. */
        if (r == EOWNERDEAD)
                (void)pthread_mutex_consistent(&t->lock);
        else
                assert(r == 0);
}

static void table_unlock(LimitsTable *t) {
        (void)pthread_mutex_unlock(&t->lock);
}

/* SipHash-2-4 (Aumasson, Bernstein 2012, the reference's byte order) of
 * the key under the table's random key: which slots a key probes must not
 * be computable from outside, or addresses could be chosen to fill one
 * victim's window (a full window refuses, see ratelimit.h). */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                  \
        do {                                                                                                      \
                v0 += v1;                                                                                         \
                v1 = ROTL(v1, 13);                                                                                \
                v1 ^= v0;                                                                                         \
                v0 = ROTL(v0, 32);                                                                                \
                v2 += v3;                                                                                         \
                v3 = ROTL(v3, 16);                                                                                \
                v3 ^= v2;                                                                                         \
                v0 += v3;                                                                                         \
                v3 = ROTL(v3, 21);                                                                                \
                v3 ^= v0;                                                                                         \
                v2 += v1;                                                                                         \
                v1 = ROTL(v1, 17);                                                                                \
                v1 ^= v2;                                                                                         \
                v2 = ROTL(v2, 32);                                                                                \
        } while (0)

static uint64_t le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

static uint64_t siphash24(const uint8_t *in, size_t len, const uint8_t key[static 16]) {
        uint64_t k0 = le64(key), k1 = le64(key + 8);
        uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k0, v1 = UINT64_C(0x646f72616e646f6d) ^ k1;
        uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k0, v3 = UINT64_C(0x7465646279746573) ^ k1;
        uint64_t b = (uint64_t)len << 56, m;
        size_t i;

        for (i = 0; i + 8 <= len; i += 8) {
                m = le64(in + i);
                v3 ^= m;
                SIPROUND;
                SIPROUND;
                v0 ^= m;
        }
        for (size_t j = 0; i + j < len; j++)
                b |= (uint64_t)in[i + j] << (8 * j);
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t key_hash(const LimitsTable *t, const LimitsKey *k) {
        uint8_t in[1 + sizeof(k->addr)];
        in[0] = k->port;
        memcpy(in + 1, k->addr, sizeof(k->addr));
        return (uint32_t)siphash24(in, sizeof(in), t->hash_key);
}

static bool key_eq(const LimitsKey *a, const LimitsKey *b) {
        return a->port == b->port && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static uint32_t *count_of(LimitsTable *t, unsigned column, unsigned slot) {
        return &t->counts[(size_t)column * t->n_slots + slot];
}

static unsigned conns_of(LimitsTable *t, unsigned slot) {
        unsigned n = 0;
        for (unsigned c = 0; c < t->n_columns; c++)
                n += *count_of(t, c, slot);
        return n;
}

/* Whether the slot's bucket has refilled completely by now. */
static bool bucket_full(const LimitsSlot *s, uint64_t now_ms) {
        if (!s->bucket_set)
                return true;
        if (s->rate <= 0)
                return true;
        double cap = (s->burst + 1.0) * 1000.0;
        double elapsed = (double)(now_ms - s->stamp_ms);
        return (double)s->tokens + elapsed * s->rate >= cap;
}

/* Finds key's slot, or (create) claims an idle one for it: unused, or with
 * no connection and a full bucket. -1 when the window is full of other busy
 * keys. Called with the lock held. */
static int slot_find(LimitsTable *t, const LimitsKey *key, bool create) {
        uint32_t mask = t->n_slots - 1, h = key_hash(t, key);
        int reuse = -1;

        for (unsigned i = 0; i < LIMITS_PROBE; i++) {
                unsigned idx = (h + i) & mask;
                LimitsSlot *s = &t->slots[idx];
                if (s->used && key_eq(&s->key, key))
                        return (int)idx;
                if (reuse < 0 && (!s->used || (conns_of(t, idx) == 0 && bucket_full(s, t->now_ms))))
                        reuse = (int)idx;
        }
        if (!create || reuse < 0)
                return -1;
        t->slots[reuse] = (LimitsSlot){.used = true, .key = *key};
        return reuse;
}

int limits_conn_acquire(LimitsTable *t, unsigned column, const LimitsKey *key, unsigned max, unsigned ceiling,
                        uint64_t now_ms, int *ret_slot) {
        int slot, r;

        assert(t && key && ret_slot && column < t->n_columns);

        table_lock(t);
        if (now_ms > t->now_ms)
                t->now_ms = now_ms;
        *ret_slot = -1;
        slot = slot_find(t, key, true);
        if (slot < 0)
                r = -ENOSPC;
        else {
                unsigned n = conns_of(t, (unsigned)slot);
                if (ceiling > 0 && n >= ceiling)
                        r = LIMITS_CONN_CEILING;
                else {
                        (*count_of(t, column, (unsigned)slot))++;
                        *ret_slot = slot;
                        r = max > 0 && n >= max ? LIMITS_CONN_OVER : LIMITS_CONN_OK;
                }
        }
        table_unlock(t);
        return r;
}

void limits_conn_release(LimitsTable *t, unsigned column, int slot) {
        assert(t && column < t->n_columns);
        if (slot < 0)
                return;
        assert((unsigned)slot < t->n_slots);

        table_lock(t);
        uint32_t *n = count_of(t, column, (unsigned)slot);
        if (*n > 0) /* 0 after limits_column_reset() */
                (*n)--;
        table_unlock(t);
}

int limits_rate_take(LimitsTable *t, const LimitsKey *key, double rate, unsigned burst, uint64_t now_ms,
                     unsigned *ret_retry_after, uint64_t *ret_delay_ms) {
        int slot, r;

        assert(t && key);
        if (ret_delay_ms)
                *ret_delay_ms = 0;
        if (rate <= 0)
                return 1;

        int64_t cap = (int64_t)(burst + 1) * 1000;

        table_lock(t);
        if (now_ms > t->now_ms)
                t->now_ms = now_ms;
        slot = slot_find(t, key, true);
        if (slot < 0) {
                table_unlock(t);
                return -ENOSPC;
        }
        LimitsSlot *s = &t->slots[slot];
        if (!s->bucket_set) {
                s->bucket_set = true;
                s->tokens = cap;
                s->stamp_ms = now_ms;
        } else if (now_ms > s->stamp_ms) {
                double add = (double)(now_ms - s->stamp_ms) * rate; /* ms * tokens/s = thousandths */
                s->tokens = add >= (double)cap ? cap : s->tokens + (int64_t)add;
                if (s->tokens > cap)
                        s->tokens = cap;
                s->stamp_ms = now_ms;
        }
        s->rate = rate;
        s->burst = burst;
        if (s->tokens >= 1000) {
                s->tokens -= 1000;
                if (ret_delay_ms) {
                        /* excess in thousandths / (tokens per second) = ms */
                        int64_t excess = (int64_t)burst * 1000 - s->tokens;
                        if (excess > 0) {
                                double ms = (double)excess / rate;
                                uint64_t d = (uint64_t)ms;
                                *ret_delay_ms = (double)d < ms ? d + 1 : d;
                        }
                }
                r = 1;
        } else {
                if (ret_retry_after) {
                        double secs = (double)(1000 - s->tokens) / (rate * 1000.0);
                        unsigned ra = (unsigned)secs; /* no libm for one ceil() */
                        if ((double)ra < secs)
                                ra++;
                        *ret_retry_after = ra < 1 ? 1 : ra;
                }
                r = 0;
        }
        table_unlock(t);
        return r;
}

void limits_column_reset(LimitsTable *t, unsigned column) {
        assert(t && column < t->n_columns);
        table_lock(t);
        memset(count_of(t, column, 0), 0, (size_t)t->n_slots * sizeof(uint32_t));
        table_unlock(t);
}

unsigned limits_conn_count(LimitsTable *t, const LimitsKey *key) {
        unsigned n = 0;
        int slot;

        table_lock(t);
        slot = slot_find(t, key, false);
        if (slot >= 0)
                n = conns_of(t, (unsigned)slot);
        table_unlock(t);
        return n;
}

int limits_key_from_sockaddr(const struct sockaddr *sa, uint8_t port, unsigned ipv6_prefix, LimitsKey *ret) {
        LimitsKey k = {.port = port};

        if (ipv6_prefix < LIMITS_MIN_IPV6_PREFIX || ipv6_prefix > 128)
                return -EINVAL;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                k.addr[10] = 0xff;
                k.addr[11] = 0xff;
                memcpy(k.addr + 12, &in->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                memcpy(k.addr, &in6->sin6_addr, 16);
                /* An IPv4 client on a dual-stack socket: the IPv4 address
                 * is the whole key, like on an IPv4 socket. */
                if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        unsigned whole = ipv6_prefix / 8, bits = ipv6_prefix % 8;
                        if (bits != 0)
                                k.addr[whole++] &= (uint8_t)(0xff00u >> bits);
                        memset(k.addr + whole, 0, sizeof(k.addr) - whole);
                }
        } else
                return -EAFNOSUPPORT;
        *ret = k;
        return 0;
}

int limits_key_from_identity(const char *identity, uint8_t port, LimitsKey *ret) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        LimitsKey k = {.port = (uint8_t)(LIMITS_PORT_IDENTITY | port)};

        assert(identity && ret);
        if (EVP_Digest(identity, strlen(identity), md, &len, EVP_sha256(), NULL) != 1 || len < sizeof(k.addr))
                return -EIO;
        memcpy(k.addr, md, sizeof(k.addr));
        *ret = k;
        return 0;
}
