/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * File helpers for managed paths. A managed path that an attacker or a
 * mistake turned into a symlink is reported (-ELOOP), never written through:
 * every function but read_file refuses a symbolic link in ANY component of
 * the path (openat2 RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk one
 * component at a time), and then works relative to the directory's fd, so
 * a user who owns a directory on the way (the service user's podman state,
 * the registry's storage) cannot redirect root's writes elsewhere.
 * read_file refuses a symlink in the last component only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Reads a whole regular file (at most max bytes, -EFBIG beyond). On success
 * *ret_data is a NUL-terminated buffer owned by the caller and *ret_size its
 * length without the NUL. -ENOENT when missing; -EBADFD for anything but a
 * regular file (a FIFO is refused at once, never waited on: the open is
 * O_NONBLOCK). */
int read_file(const char *path, size_t max, char **ret_data, size_t *ret_size);

/* read_file() that also returns the file's fstat() (of the fd read), for a
 * caller that checks mode or owner of what it read (secret files). */
int read_file_stat(const char *path, size_t max, char **ret_data, size_t *ret_size, struct stat *ret_st);

/* read_file() of rel below the directory dfd, refusing a symbolic link in
 * ANY component (-ELOOP) and ".." or an absolute rel (-EXDEV): for files
 * of a directory another machine made (a client bundle). */
int read_file_beneath(int dfd, const char *rel, size_t max, char **ret_data, size_t *ret_size);

/* Opens path (relative to dfd: AT_FDCWD or a directory's fd) to read a
 * file, for a caller that reads it itself (a stream, a size limit of its
 * own): O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK plus flags (O_NOFOLLOW...).
 * As in read_file(), a FIFO is never waited on for a writer: anything but a
 * regular file is refused (-EBADFD) before any read, and only then is
 * O_NONBLOCK cleared. A device node is refused before it is opened (its
 * driver's open() never runs): path is opened O_PATH first, checked, and
 * then reopened through /proc/self/fd (fileio.c, reopen_regular()); the
 * same for read_file() and read_file_beneath(). A symlink with O_NOFOLLOW:
 * -ELOOP. ret_st (may be NULL) gets the fstat(), also when refused (to tell
 * a directory). Returns the fd or a negative errno. */
int open_regular(int dfd, const char *path, int flags, struct stat *ret_st);

/* read_file() of path (relative to dfd) opened as open_regular() does with
 * flags: for a caller that must follow a symlink in the last component
 * (flags 0: certificates an operator points at certbot's live/ links). */
int read_file_at(int dfd, const char *path, int flags, size_t max, char **ret_data, size_t *ret_size);

/* An exclusive lock for a read-modify-write of path, a regular file (not a
 * symlink) that write_file_atomic() replaces: flock() of the file open at
 * path, waiting for the holder. A rename replaces the inode, so a lock of
 * the file renamed away guards nothing: when path names another file once
 * the lock is held, it is taken again on that one. Returns the fd holding
 * it (closing it releases it) or a negative errno. */
int lock_file_for_update(const char *path);

/* Replaces path atomically with data: a temporary file in the same directory
 * is created with mode 0600, given its owner and final mode before any byte
 * is written (so key material is never readable by others, not even for a
 * moment), written, fsync'ed, renamed over path, and the directory fsync'ed.
 * uid/gid of (uid_t)-1 / (gid_t)-1 leave the owner as created. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid);

/* 1 when path is a regular file with exactly this content, mode and owner,
 * 0 when it is missing or differs in any, negative errno on error. When
 * ret_content_same is given it tells whether the content alone matched. */
int file_matches(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid,
                 bool *ret_content_same);

/* 1 when path is a directory with this mode and owner, 0 when missing or
 * different, negative errno on error (-ENOTDIR, -ELOOP for a symlink). */
int directory_matches(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Creates path (parents with 0755 root:root if missing) and sets its mode and
 * owner. Idempotent. -ELOOP when any component is a symlink, -ENOTDIR when
 * one is not a directory. */
int ensure_directory(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Sets mode and owner of an existing file or directory without following a
 * symlink. */
int set_mode_owner(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Creates all missing parents of path (not path itself), mode 0755. Existing
 * parents must be directories, not symlinks (-ELOOP). */
int mkdir_parents(const char *path);

/* "$TMPDIR/NAME.XXXXXX" for mkstemp()/mkdtemp(), for scratch files that may
 * live anywhere: $TMPDIR when it is an absolute path to a directory (and
 * the process is not set-id: secure_getenv), else /tmp. Not for atomic
 * writes, which stay next to their target (write_file_atomic). NULL on
 * OOM. */
char *tmp_template(const char *name);

/* For tests: resolve with the O_NOFOLLOW walk even where openat2() works. */
extern bool fileio_force_fd_walk;

/* Returns root + path as a new string ("/etc/x" under "/tmp/r" is
 * "/tmp/r/etc/x"); root NULL or "/" gives a copy of path. NULL on OOM. */
char *path_join_root(const char *root, const char *path);

/* Removes the file (or symlink, not followed) path, resolved as above.
 * 1 when removed, 0 when it was not there, negative errno otherwise. */
int remove_file(const char *path);

/* Removes the directory path (resolved as above): when empty, or with
 * recursive everything below it first, never following a symlink nor
 * crossing into another file system (-EXDEV). 1 when removed, 0 when it was
 * not there, -ENOTEMPTY (not recursive), negative errno otherwise. */
int remove_directory(const char *path, bool recursive);
