/* SPDX-License-Identifier: MIT */
/* (Named ratelimit.h, not limits.h: a header called limits.h in an include
 * directory shadows the C library's <limits.h> through gcc's include_next.) */
#pragma once

/*
 * Per-client limits shared by every proxy worker: concurrent connections
 * ([pull]/[push] conn_per_ip) and request rate ([pull]/[push] rate and
 * burst, a token bucket).
 *
 * Design. The parent creates one table with mmap(MAP_SHARED|MAP_ANONYMOUS)
 * before it forks the workers; the workers inherit the mapping, so every
 * worker sees the same counters and a client cannot multiply its allowance
 * by landing on several workers. No file, no IPC, nothing to open after the
 * sandbox is locked down.
 *
 *  - Keys: (port, client). An IPv4 client is its address; an IPv6 client is
 *    its prefix ([proxy] ipv6_prefix, /64 by default): one host or LAN
 *    gets a /64 and picks any of its 2^64 addresses at will, so keying by
 *    /128 let one client take as many buckets as it liked (and fill the
 *    table, below). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, an IPv4
 *    client on a dual-stack socket) is the IPv4 client, never a prefix.
 *  - Slots: a fixed array of n_slots entries ([proxy] limits_slots,
 *    LIMITS_DEFAULT_SLOTS), open addressing keyed by (port, client),
 *    probing at most LIMITS_PROBE slots from the hash. The hash is SipHash
 *    with a key drawn at limits_new(): an attacker who could compute it
 *    would pick addresses that fill one victim's probe window and have the
 *    victim refused (below). An entry is never deleted, only reused in
 *    place: a slot with no open connection and a full bucket carries no
 *    information (forgetting it changes no answer), so it is idle and a new
 *    key may take it: stale addresses never fill the table. "Full" is
 *    judged at the newest time any call has passed, a connection's or a
 *    request's: when the table is full only refused clients arrive, and
 *    they must still see the buckets refill. Lookups scan
 *    the whole probe window for the key before taking an idle slot, so a
 *    key is never in the table twice.
 *  - Connections are counted per worker, in columns: counts[column][slot].
 *    The number of connections of a client is the sum over the columns.
 *    When a worker dies (SIGSYS, SIGKILL after a drain) its connections
 *    never say goodbye; the parent zeroes its column (limits_column_reset())
 *    before giving it to the replacement, so no count leaks. There are
 *    n_columns columns: twice the number of workers, so that a new
 *    generation of workers (SIGHUP) and the old one, still draining, never
 *    share a column.
 *  - Rate: one token bucket per slot: capacity burst + 1, refilled at rate
 *    tokens per second, a request takes one token. Tokens are kept in
 *    thousandths, time in milliseconds of CLOCK_MONOTONIC (the same clock in
 *    every process of the machine). Which requests are refused is the same
 *    as nginx's limit_req with or without nodelay; what differs is when the
 *    accepted ones are served:
 *      nodelay ([pull], "limit_req burst=N nodelay"): at once;
 *      delay ([push] delay = yes, the guide's "limit_req burst=N"): a
 *      request is served when the rate allows it. nginx's "excess" (the
 *      requests queued ahead, counting this one) is burst - tokens left
 *      after the take, and the request waits excess / rate seconds: the
 *      first request of a full bucket at once, the next 1/rate later, ...,
 *      the (burst+1)th burst/rate later; the one after that is refused.
 *      The table only says how long; the worker holds the request back.
 *  - Locking: one process-shared, robust pthread mutex for the whole table.
 *    Critical sections are a probe of LIMITS_PROBE slots and a few
 *    additions, no system call; contention between a handful of workers is
 *    negligible next to a TLS handshake. Robust, because a worker killed
 *    while holding the lock must not wedge the others: the next locker gets
 *    EOWNERDEAD, marks the mutex consistent and carries on (the dead
 *    worker's column is reset by the parent anyway).
 *
 * Bounds. Memory: n_slots * (sizeof(LimitsSlot) + 4 * n_columns) bytes,
 * 16384 slots and 8 columns are about 1.2 MiB. When all LIMITS_PROBE slots
 * of a key's window are busy (more distinct clients active at once than the
 * table holds: with /64 keys that takes thousands of networks, not one
 * host), a new key cannot be tracked and is REFUSED (-ENOSPC below; the
 * worker answers 503 and counts it in
 * regvisor_proxy_limits_table_full_total). Failing open instead, as this
 * table did once, switched the limits off for every new client, the
 * attacker's next address included, once the table was full. Clients
 * already in the table keep their slot and their service: the busy entries
 * are exactly the clients being served. What an attacker with that many
 * networks can still do is keep newcomers out while it stays busy; the
 * secret hash keeps it from aiming at one client, the operator sees the
 * counter and can raise limits_slots.
 */

#include <stdbool.h>
#include <stdint.h>

#define LIMITS_DEFAULT_SLOTS 16384
#define LIMITS_MAX_SLOTS (1U << 20)
#define LIMITS_PROBE 64
#define LIMITS_DEFAULT_IPV6_PREFIX 64
#define LIMITS_MIN_IPV6_PREFIX 32
#define LIMITS_PORT_IDENTITY 0x80

typedef struct LimitsTable LimitsTable;

/* A client as the table keys it: IPv4 in IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d), so that the same client is one key on a dual-stack
 * socket and on an IPv4 one; IPv6 masked to its prefix (the bits beyond it
 * zero). port tells the two public ports apart. */
typedef struct LimitsKey {
        uint8_t port; /* 0 pull, 1 push, LIMITS_PORT_IDENTITY + port: by identity */
        uint8_t addr[16];
} LimitsKey;

/* Creates a table of n_slots slots (a power of two from LIMITS_PROBE to
 * LIMITS_MAX_SLOTS; 0 means LIMITS_DEFAULT_SLOTS) and n_columns connection
 * columns, in shared anonymous memory, with a fresh random hash key.
 * Returns 0 or a negative errno (-EINVAL for bad sizes). */
int limits_new(unsigned n_slots, unsigned n_columns, LimitsTable **ret);

/* Unmaps the table; NULL is fine. Each process that inherited it may call
 * this for its own mapping. */
void limits_free(LimitsTable *t);

/* What limits_conn_acquire() made of a new connection. */
enum {
        LIMITS_CONN_CEILING = 0, /* at the hard ceiling: not counted, close it */
        LIMITS_CONN_OK = 1,      /* counted, within max */
        LIMITS_CONN_OVER = 2,    /* counted, over max: answer it 429 */
};

/* The hard ceiling of connections per client for a soft limit max (0: no
 * limit). Between max and the ceiling a connection is accepted and its
 * first request answered 429 with Retry-After (as nginx's limit_conn
 * answers with a status): a client that sees "connection reset" or a bare
 * EOF has nothing that says "limit", and containerd then fails the whole
 * pull. Beyond the ceiling even a handshake per connection is more than a
 * flood deserves: closed before TLS. */
static inline unsigned limits_conn_ceiling(unsigned max) {
        return max > UINT32_MAX / 2 ? UINT32_MAX : max * 2;
}

/* Counts a new connection of key in column while the client has fewer
 * than ceiling connections (ceiling 0: no limit, always counted). now_ms
 * (CLOCK_MONOTONIC milliseconds, as for limits_rate_take()) judges which
 * entries are idle: when the table is full, only clients turned away
 * arrive, and they must still see the others' buckets refill. Returns
 * LIMITS_CONN_OK when the client had fewer than max connections (max 0:
 * always), LIMITS_CONN_OVER when it had max or more but fewer than
 * ceiling, both with *ret_slot set (pass it to limits_conn_release());
 * LIMITS_CONN_CEILING (0) when it had ceiling; -ENOSPC when the table has
 * no room for the key (refuse the client: it cannot be limited). *ret_slot
 * is -1 unless the connection was counted. */
int limits_conn_acquire(LimitsTable *t, unsigned column, const LimitsKey *key, unsigned max, unsigned ceiling,
                        uint64_t now_ms, int *ret_slot);

/* A key for an authenticated client (a valid certificate on the push
 * port): port and the first 16 bytes of SHA-256 of its identity (the
 * certificate's subject), so that a known client is limited as itself
 * from any address, and never by its neighbours behind the same NAT. */
int limits_key_from_identity(const char *identity, uint8_t port, LimitsKey *ret);

/* Uncounts a connection acquired with limits_conn_acquire() in the same
 * column; slot -1 is a no-op. */
void limits_conn_release(LimitsTable *t, unsigned column, int slot);

/* Takes one request token for key at time now_ms (CLOCK_MONOTONIC
 * milliseconds) from a bucket of rate tokens per second and burst + 1
 * tokens. Returns 1 when allowed (also when rate is 0: off), 0 when
 * limited; then *ret_retry_after (may be NULL) is the number of whole
 * seconds until a token is back (at least 1); -ENOSPC when the table has no
 * room for the key (refuse the request). With ret_delay_ms non-NULL (delay
 * mode, see above) an allowed request's wait in milliseconds is stored
 * there (0: serve now; always 0 unless 1 is returned); NULL is nodelay. */
int limits_rate_take(LimitsTable *t, const LimitsKey *key, double rate, unsigned burst, uint64_t now_ms,
                     unsigned *ret_retry_after, uint64_t *ret_delay_ms);

/* Zeroes a column: every connection counted in it is forgotten. The parent
 * calls it when the worker owning the column is gone. */
void limits_column_reset(LimitsTable *t, unsigned column);

/* Connections of key summed over all columns (for tests and status). */
unsigned limits_conn_count(LimitsTable *t, const LimitsKey *key);

/* Fills *ret from a socket address (AF_INET or AF_INET6): IPv4 (also
 * IPv4-mapped IPv6) as its address, other IPv6 as its first ipv6_prefix
 * bits (LIMITS_MIN_IPV6_PREFIX to 128). -EAFNOSUPPORT for other families,
 * -EINVAL for a prefix out of range. */
struct sockaddr;
int limits_key_from_sockaddr(const struct sockaddr *sa, uint8_t port, unsigned ipv6_prefix, LimitsKey *ret);
