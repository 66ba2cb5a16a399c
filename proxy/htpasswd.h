/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The push port's optional second factor ([push] htpasswd): Basic
 * credentials checked against an htpasswd file of bcrypt entries, as
 * Distribution's own htpasswd auth does. crypt(3) from libxcrypt computes
 * bcrypt; nothing here hashes by hand.
 *
 * Who reads what: the command line (the proxy parent's side, as root)
 * loads the file into a ProxyConfig with htpasswd_load(), at start and on
 * every reload; the parent reloads when the file changes (proxy.c polls
 * its stamp); workers get the entries by fork() and open nothing.
 *
 * Only bcrypt ($2y$, $2b$, $2a$: `htpasswd -B`) is accepted: the other
 * htpasswd formats (MD5-crypt "$apr1$", SHA1 "{SHA}", crypt DES, plain
 * text) are weak or not in libxcrypt, and refused at load with the line.
 *
 * Timing: the hash crypt() computes is compared with CRYPTO_memcmp(); an
 * unknown user costs a bcrypt of the file's costliest hash too, so the
 * answer's time does not tell which names exist. bcrypt is slow on
 * purpose (cost 10: ~70 ms of a core, in the worker's event loop): only
 * clients with a valid client certificate get this far, [push] rate
 * bounds their attempts, and a worker remembers credentials that passed
 * (HtpasswdCache), so a push costs one bcrypt per worker, not one per
 * request.
 */

#include <crypt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTPASSWD_MAX_USERS 4096
#define HTPASSWD_USER_MAX 255
#define HTPASSWD_BCRYPT_LEN 60
#define HTPASSWD_PASSWORD_MAX 1024
/* A file larger than this is refused: 4096 users of 60-byte hashes. */
#define HTPASSWD_MAX_SIZE (4 * 1024 * 1024)

typedef struct HtpasswdEntry {
        char *user;
        char hash[HTPASSWD_BCRYPT_LEN + 1];
} HtpasswdEntry;

/* What identifies the file's content, for "has it changed". */
typedef struct HtpasswdStamp {
        dev_t dev;
        ino_t ino;
        off_t size;
        int64_t mtime_ns, ctime_ns;
} HtpasswdStamp;

typedef struct Htpasswd {
        HtpasswdEntry *entries;
        unsigned n;
        const char *dummy; /* the costliest hash, for unknown users; NULL when n == 0 */
        HtpasswdStamp stamp;
} Htpasswd;

/* Parses htpasswd text: "user:hash" lines, blank lines and '#' comments
 * ignored, each user once, a bcrypt hash of exactly 60 bytes, user names
 * 1 to HTPASSWD_USER_MAX visible ASCII bytes without ':'. On -EINVAL
 * *ret_line and *ret_why (static) say where and what was expected; -ENOMEM.
 * *ret is filled only on success. Pure. */
int htpasswd_parse(const char *text, size_t size, Htpasswd *ret, unsigned *ret_line, const char **ret_why);

/* Reads and parses path (a regular file, not a symlink, at most
 * HTPASSWD_MAX_SIZE) and records its stamp. On failure *ret_error is
 * "PATH:LINE: what was expected" or "PATH: why" (caller frees). */
int htpasswd_load(const char *path, Htpasswd *ret, char **ret_error);

/* The stamp of path now: 0, or a negative errno (gone: -ENOENT). */
int htpasswd_stamp(const char *path, HtpasswdStamp *ret);

bool htpasswd_stamp_equal(const HtpasswdStamp *a, const HtpasswdStamp *b);

/* Frees what *h owns and zeroes it. NULL-safe. */
void htpasswd_done(Htpasswd *h);

/* Splits an Authorization value "Basic BASE64" into user and password,
 * decoded into buf (size bytes; pointers into it, NUL-terminated). 0, or
 * -EINVAL (another scheme, bad base64, no ':', a NUL or control byte) or
 * -E2BIG. Pure. */
int htpasswd_basic_decode(const char *value, size_t len, char *buf, size_t size, const char **ret_user,
                          const char **ret_password);

/* Whether user and password (NUL-terminated) match an entry. data is
 * crypt_r's scratch (large: the caller keeps one). Constant in the
 * password's correctness and, up to the entries' costs, in whether the
 * user exists. */
bool htpasswd_verify(const Htpasswd *h, const char *user, const char *password, struct crypt_data *data);

/* Credentials that passed, per worker, so that each request of a push
 * does not pay a bcrypt: SHA-256 of the client's CN and the Authorization
 * value. A reload starts new workers, and with them empty caches. */
#define HTPASSWD_CACHE_SLOTS 64
typedef struct HtpasswdCache {
        unsigned char key[HTPASSWD_CACHE_SLOTS][32];
        bool used[HTPASSWD_CACHE_SLOTS];
        unsigned next;
} HtpasswdCache;

/* The cache key of (cn, value). */
void htpasswd_cache_key(const char *cn, const char *value, size_t len, unsigned char ret[32]);
bool htpasswd_cache_has(const HtpasswdCache *c, const unsigned char key[32]);
void htpasswd_cache_add(HtpasswdCache *c, const unsigned char key[32]);
