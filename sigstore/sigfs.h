/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The signature store on disk, relative to one directory fd (DIR/v1), with
 * names that sigcheck.c has validated:
 *
 *   v1/<repository, "/" written as "+">/sha256-<64 hex>/<suffix>
 *
 * Each file holds one raw signature (mode 0640). "+" cannot occur in a
 * repository name and "." cannot start a suffix, so no request can name
 * another repository's directory or a temp file. A file is written as
 * ".tmp-<random>" in its own directory, fsync'ed, linked to its name with
 * linkat() (which fails instead of replacing: a signature is never
 * overwritten), the temp name removed and the directory fsync'ed. A crash
 * leaves at most a temp file, removed by sigfs_cleanup() at the next start,
 * or an empty directory, which lists as no signature.
 *
 * The store is single-threaded: one request at a time, so the count cap
 * and the duplicate check are not racing another writer of this process.
 * Library-like: no logging.
 */

#include <stddef.h>
#include <stdint.h>

#include "sigjson.h"

/* Reads the whole of fd, a regular file of 1..max bytes, into *ret
 * (malloc'd, the caller's). Returns 0, -EIO for anything else there (another
 * type, empty, too large, shrinking), another negative errno. Also the
 * health check's reader of the registry's blobs. */
int sigfs_read_fd(int fd, size_t max, uint8_t **ret, size_t *ret_len);

/* Opens (creating if missing, 0750) v1 below dir_fd (DIR) as a directory
 * fd, refusing a symlink. Returns the fd (O_CLOEXEC) or a negative errno. */
int sigfs_open_at(int dir_fd);

/* Removes every ".tmp-*" file in every digest directory below root_fd (a
 * crash between create and link, or between link and unlink). Returns the
 * number removed or a negative errno. */
int sigfs_cleanup(int root_fd);

/* Reads the signatures stored for repository@digest, sorted by suffix.
 * A repository or digest never written is no error: *ret_n is 0. At most
 * SIGSTORE_MAX_PER_DIGEST entries are returned. *ret is the caller's (free
 * with sig_entries_free()). Returns 0 or a negative errno (-EIO for a file
 * that is not a regular file of 1..SIGSTORE_MAX_SIGNATURE bytes). */
int sigfs_list(int root_fd, const char *repository, size_t repository_len, const char *digest,
               SigEntry **ret, size_t *ret_n);

/* Stores one signature. Returns 0 when written; 1 when nothing needed
 * writing because an entry with this suffix and the same content, or with
 * the same content under another suffix, is there already; -EEXIST when the
 * suffix exists with other content; -EDQUOT when the digest already holds
 * SIGSTORE_MAX_PER_DIGEST signatures; another negative errno on I/O
 * errors. */
int sigfs_put(int root_fd, const char *repository, size_t repository_len, const char *digest,
              const SigEntry *sig);
