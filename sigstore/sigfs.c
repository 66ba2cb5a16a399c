/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "sigfs.h"

#define LAYOUT_DIR "v1"
#define TMP_PREFIX ".tmp-"
#define DIR_MODE 0750
#define FILE_MODE 0640

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

/* The two directory names of repository@digest; both buffers NAME_MAX+1. */
static void dir_names(const char *repository, size_t repository_len, const char *digest,
                      char repo_dir[static SIGSTORE_REPOSITORY_MAX + 1],
                      char digest_dir[static SIGSTORE_DIGEST_LEN + 1]) {
        assert(repository_len <= SIGSTORE_REPOSITORY_MAX);
        for (size_t i = 0; i < repository_len; i++)
                repo_dir[i] = repository[i] == '/' ? '+' : repository[i];
        repo_dir[repository_len] = '\0';
        /* "sha256:" -> "sha256-": no ':' in file names, for tools that mind. */
        memcpy(digest_dir, "sha256-", 7);
        memcpy(digest_dir + 7, digest + 7, SIGSTORE_DIGEST_LEN - 7);
        digest_dir[SIGSTORE_DIGEST_LEN] = '\0';
}

static int open_dir_at(int at, const char *name) {
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Opens at/name, creating it (and fsync'ing at, so the entry survives a
 * crash) when missing. */
static int ensure_dir_at(int at, const char *name) {
        int fd = open_dir_at(at, name);

        if (fd != -ENOENT)
                return fd;
        if (mkdirat(at, name, DIR_MODE) < 0 && errno != EEXIST)
                return negative_errno();
        if (fsync(at) < 0)
                return negative_errno();
        return open_dir_at(at, name);
}

int sigfs_open_at(int dir_fd) {
        return ensure_dir_at(dir_fd, LAYOUT_DIR);
}

static bool is_temp(const char *name) {
        return strneq(name, TMP_PREFIX, strlen(TMP_PREFIX));
}

/* Calls f(dirfd, name, userdata) for each entry of dirfd but "." and "..";
 * stops at the first negative result. dirfd stays open (a dup is read). */
static int for_each_entry(int dirfd, int (*f)(int dirfd, const char *name, void *userdata), void *userdata) {
        _cleanup_(closedirp) DIR *d = NULL;
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        struct dirent *de;

        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return negative_errno();
        }
        while ((errno = 0, de = readdir(d))) {
                int r;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = f(dirfd, de->d_name, userdata);
                if (r < 0)
                        return r;
        }
        return errno ? negative_errno() : 0;
}

static int cleanup_digest_entry(int dirfd, const char *name, void *userdata) {
        int *removed = userdata;

        if (!is_temp(name))
                return 0;
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return negative_errno();
        (*removed)++;
        return 0;
}

static int cleanup_repo_entry(int dirfd, const char *name, void *userdata) {
        _cleanup_close_ int fd = open_dir_at(dirfd, name);
        int before = *(int *) userdata, r;

        if (fd == -ENOTDIR || fd == -ELOOP)
                return 0; /* not ours; left alone */
        if (fd < 0)
                return fd;
        r = for_each_entry(fd, cleanup_digest_entry, userdata);
        if (r < 0)
                return r;
        if (*(int *) userdata != before && fsync(fd) < 0)
                return negative_errno();
        return 0;
}

static int cleanup_root_entry(int dirfd, const char *name, void *userdata) {
        _cleanup_close_ int fd = open_dir_at(dirfd, name);

        if (fd == -ENOTDIR || fd == -ELOOP)
                return 0;
        if (fd < 0)
                return fd;
        return for_each_entry(fd, cleanup_repo_entry, userdata);
}

int sigfs_cleanup(int root_fd) {
        int removed = 0, r;

        r = for_each_entry(root_fd, cleanup_root_entry, &removed);
        return r < 0 ? r : removed;
}

int sigfs_read_fd(int fd, size_t max, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t got = 0;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t) st.st_size > max)
                return -EIO;
        buf = malloc((size_t) st.st_size);
        if (!buf)
                return -ENOMEM;
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EIO; /* shrank under us: not a file we wrote */
                got += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

/* Reads one signature file: a regular file of 1..SIGSTORE_MAX_SIGNATURE bytes. A FIFO
 * there (the directory is the service user's) is refused at once (open_regular), not
 * waited on: that would stall the store for every client. */
static int read_signature(int dirfd, const char *name, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open_regular(dirfd, name, O_NOFOLLOW, NULL);

        if (fd == -EBADFD)
                return -EIO; /* what sigfs_read_fd() says of anything but a regular file */
        if (fd < 0)
                return fd;
        return sigfs_read_fd(fd, SIGSTORE_MAX_SIGNATURE, ret, ret_len);
}

typedef struct ListState {
        SigEntry *entries;
        size_t n;
} ListState;

static int list_entry(int dirfd, const char *name, void *userdata) {
        ListState *s = userdata;
        SigEntry *e;
        int r;

        if (is_temp(name) || !sigcheck_suffix(name, strlen(name)))
                return 0; /* a temp file, or nothing this store wrote */
        if (s->n >= SIGSTORE_MAX_PER_DIGEST)
                return 0;
        e = &s->entries[s->n];
        r = read_signature(dirfd, name, &e->content, &e->content_len);
        if (r < 0)
                return r;
        strcpy(e->suffix, name); /* sigcheck_suffix(): at most SIGSTORE_SUFFIX_MAX */
        s->n++;
        return 0;
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const SigEntry *) a)->suffix, ((const SigEntry *) b)->suffix);
}

/* Opens the digest directory of repository@digest, creating both levels when create is
 * true. -ENOENT when missing and !create. */
static int open_digest_dir(int root_fd, const char *repository, size_t repository_len, const char *digest,
                           bool create) {
        char repo_dir[SIGSTORE_REPOSITORY_MAX + 1], digest_dir[SIGSTORE_DIGEST_LEN + 1];
        _cleanup_close_ int rfd = -EBADF;

        dir_names(repository, repository_len, digest, repo_dir, digest_dir);
        rfd = create ? ensure_dir_at(root_fd, repo_dir) : open_dir_at(root_fd, repo_dir);
        if (rfd < 0)
                return rfd;
        return create ? ensure_dir_at(rfd, digest_dir) : open_dir_at(rfd, digest_dir);
}

int sigfs_list(int root_fd, const char *repository, size_t repository_len, const char *digest,
               SigEntry **ret, size_t *ret_n) {
        _cleanup_close_ int dfd = -EBADF;
        ListState s = {};
        int r;

        dfd = open_digest_dir(root_fd, repository, repository_len, digest, false);
        if (dfd == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (dfd < 0)
                return dfd;

        s.entries = calloc(SIGSTORE_MAX_PER_DIGEST, sizeof(SigEntry));
        if (!s.entries)
                return -ENOMEM;
        r = for_each_entry(dfd, list_entry, &s);
        if (r < 0) {
                sig_entries_free(s.entries, s.n);
                return r;
        }
        qsort(s.entries, s.n, sizeof(SigEntry), entry_cmp);
        *ret = s.entries;
        *ret_n = s.n;
        return 0;
}

/* Writes data to a new ".tmp-<random>" file in dirfd and fsyncs it; its name goes to tmp. */
static int write_temp(int dirfd, const uint8_t *data, size_t len, char tmp[static 64]) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t rnd;
        size_t done = 0;

        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                return -EIO;
        (void) snprintf(tmp, 64, TMP_PREFIX "%016llx", (unsigned long long) rnd);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
        if (fd < 0)
                return negative_errno();
        while (done < len) {
                ssize_t n = write(fd, data + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = negative_errno();
                        (void) unlinkat(dirfd, tmp, 0);
                        return r;
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0) {
                int r = negative_errno();
                (void) unlinkat(dirfd, tmp, 0);
                return r;
        }
        return 0;
}

int sigfs_put(int root_fd, const char *repository, size_t repository_len, const char *digest,
              const SigEntry *sig) {
        _cleanup_close_ int dfd = -EBADF;
        SigEntry *existing = NULL;
        size_t n = 0;
        char tmp[64];
        int r;

        assert(sig->content_len > 0 && sig->content_len <= SIGSTORE_MAX_SIGNATURE);
        r = sigfs_list(root_fd, repository, repository_len, digest, &existing, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                bool same = existing[i].content_len == sig->content_len &&
                            memcmp(existing[i].content, sig->content, sig->content_len) == 0;

                if (same || streq(existing[i].suffix, sig->suffix)) {
                        sig_entries_free(existing, n);
                        return same ? 1 : -EEXIST;
                }
        }
        sig_entries_free(existing, n);
        if (n >= SIGSTORE_MAX_PER_DIGEST)
                return -EDQUOT;

        dfd = open_digest_dir(root_fd, repository, repository_len, digest, true);
        if (dfd < 0)
                return dfd;
        r = write_temp(dfd, sig->content, sig->content_len, tmp);
        if (r < 0)
                return r;
        /* linkat() never replaces: EEXIST when the name appeared meanwhile. */
        r = linkat(dfd, tmp, dfd, sig->suffix, 0) < 0 ? negative_errno() : 0;
        (void) unlinkat(dfd, tmp, 0);
        if (r < 0)
                return r;
        if (fsync(dfd) < 0)
                return negative_errno();
        return 0;
}
