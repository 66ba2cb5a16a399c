/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

int read_file(const char *path, size_t max, char **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((size_t) st.st_size > max)
                return -EFBIG;

        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, (size_t) st.st_size - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size == (size_t) st.st_size)
                        break;
        }
        buf[size] = 0;
        *ret_data = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

static int fsync_parent(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int dfd = -EBADF;

        if (!copy)
                return -ENOMEM;
        dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        if (fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

static int write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

/* Temporary files a killed writer left behind are removed by the next
 * writer of the same path, so an interrupted run converges to a clean tree. */
static void remove_stale_temporaries(const char *path) {
        _cleanup_free_ char *pattern = NULL;
        glob_t g;

        if (asprintf(&pattern, "%s.regvisor-tmp-??????", path) < 0)
                return;
        if (glob(pattern, GLOB_NOSORT | GLOB_NOESCAPE, NULL, &g) != 0)
                return;
        for (size_t i = 0; i < g.gl_pathc; i++)
                (void) unlink(g.gl_pathv[i]);
        globfree(&g);
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        /* Never replace something that is not a regular file: a symlink or a
         * directory at a managed path is a mistake to report. */
        if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
                return S_ISLNK(st.st_mode) ? -ELOOP : -EISDIR;

        remove_stale_temporaries(path);
        if (asprintf(&tmp, "%s.regvisor-tmp-XXXXXX", path) < 0)
                return -ENOMEM;

        /* mkostemp creates with 0600 regardless of umask's looser bits. */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                free(TAKE_PTR(tmp));
                return negative_errno();
        }

        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0) {
                r = negative_errno();
                goto fail;
        }
        /* Final mode before any content: fchown may clear setgid bits, so
         * chmod comes after it. */
        if (fchmod(fd, mode) < 0) {
                r = negative_errno();
                goto fail;
        }
        r = write_all(fd, data, size);
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        return fsync_parent(path);

fail:
        (void) unlink(tmp);
        return r;
}

static int stat_nofollow(const char *path, struct stat *st) {
        if (lstat(path, st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (S_ISLNK(st->st_mode))
                return -ELOOP;
        return 1;
}

static bool owner_matches(const struct stat *st, mode_t mode, uid_t uid, gid_t gid) {
        return (st->st_mode & 07777) == mode && (uid == (uid_t) -1 || st->st_uid == uid) &&
               (gid == (gid_t) -1 || st->st_gid == gid);
}

int file_matches(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid,
                 bool *ret_content_same) {
        _cleanup_free_ char *cur = NULL;
        size_t cur_size;
        struct stat st;
        bool same;
        int r;

        if (ret_content_same)
                *ret_content_same = false;
        r = stat_nofollow(path, &st);
        if (r <= 0)
                return r;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;

        r = read_file(path, size + 1, &cur, &cur_size);
        if (r == -EFBIG)
                return 0;
        if (r < 0)
                return r;
        same = cur_size == size && memcmp(cur, data, size) == 0;
        if (ret_content_same)
                *ret_content_same = same;
        return same && owner_matches(&st, mode, uid, gid);
}

int directory_matches(const char *path, mode_t mode, uid_t uid, gid_t gid) {
        struct stat st;
        int r;

        r = stat_nofollow(path, &st);
        if (r <= 0)
                return r;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return owner_matches(&st, mode, uid, gid);
}

int set_mode_owner(const char *path, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = -EBADF;

        /* O_PATH|O_NOFOLLOW then fchown/fchmod via /proc would work too; a
         * plain open with O_NOFOLLOW suffices for files and directories we
         * may read. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        return 0;
}

int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                struct stat st;

                if (*s != '/')
                        continue;
                *s = 0;
                if (lstat(p, &st) < 0) {
                        if (errno != ENOENT)
                                return negative_errno();
                        /* 0755 whatever the umask: parents must be
                         * traversable by the users we hand subtrees to. */
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        if (chmod(p, 0755) < 0)
                                return negative_errno();
                } else if (S_ISLNK(st.st_mode)) {
                        /* Parents such as /var/run may be distribution symlinks
                         * we do not manage; follow them only if they point to a
                         * directory. */
                        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
                                return -ENOTDIR;
                } else if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                *s = '/';
        }
        return 0;
}

int ensure_directory(const char *path, mode_t mode, uid_t uid, gid_t gid) {
        struct stat st;
        int r;

        r = mkdir_parents(path);
        if (r < 0)
                return r;
        /* Create with no permissions for others, then set the final mode. */
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        r = stat_nofollow(path, &st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return set_mode_owner(path, mode, uid, gid);
}

char *path_join_root(const char *root, const char *path) {
        char *s;

        if (!root || streq(root, "/") || !*root)
                return strdup(path);
        while (*path == '/')
                path++;
        size_t len = strlen(root);
        while (len > 1 && root[len - 1] == '/')
                len--;
        if (asprintf(&s, "%.*s/%s", (int) len, root, path) < 0)
                return NULL;
        return s;
}
