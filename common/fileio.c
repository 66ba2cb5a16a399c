/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

int read_file(const char *path, size_t max, char **ret_data, size_t *ret_size) {
        return read_file_stat(path, max, ret_data, ret_size, NULL);
}

/* Files are opened for reading with O_NONBLOCK: without it, opening a FIFO
 * waits for a writer (a FIFO in a client bundle would hang install as
 * root). read_fd() refuses anything but a regular file before reading and
 * only then clears O_NONBLOCK, so the file is read as usual. */
#define READ_OPEN_FLAGS_BASE (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define READ_OPEN_FLAGS (READ_OPEN_FLAGS_BASE | O_NOFOLLOW)
/* The first open, of what a name resolves to, before its type is known: O_PATH runs no driver's
 * open() and never waits on a FIFO. (openat2() allows no other flags with O_PATH.) */
#define PATH_OPEN_FLAGS (O_PATH | O_CLOEXEC)

/* The one check of an fd opened with O_NONBLOCK: *st its fstat(), -EBADFD
 * unless a regular file (nothing was read), else O_NONBLOCK cleared. */
static int fd_regular(int fd, struct stat *st) {
        int flags;

        if (fstat(fd, st) < 0)
                return negative_errno();
        if (!S_ISREG(st->st_mode))
                return -EBADFD;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return negative_errno();
        return 0;
}

/*
 * Opening a device node runs its driver's open() before any fstat() can
 * refuse it: as root for install, whatever a bundle's files/ holds (tar run
 * as root keeps device nodes). So every file read here is first opened
 * O_PATH (pfd; no driver, no FIFO wait), checked with fstat(), and only a
 * regular file is opened for reading: through /proc/self/fd/N, which opens
 * that very inode again, whatever happened to its name meanwhile (no race).
 * Where /proc is not there (a sandbox that does not show it), by name again
 * as pfd was opened, with O_NONBLOCK and O_NOCTTY, the inode compared after:
 * a swap in between is refused, though only after that open. That second
 * way is the one with a window, and only for who can write the directory.
 * how: the openat2() pfd was opened with, NULL for openat(dfd, name, flags).
 * Returns the fd for reading, -ELOOP for a symlink (an O_PATH|O_NOFOLLOW open
 * opens the link itself), -EBADFD for anything else not regular; *ret_st
 * gets pfd's fstat() also when refused.
 */
static int reopen_regular(int pfd, int dfd, const char *name, int flags, const struct open_how *how,
                          struct stat *ret_st) {
        _cleanup_close_ int fd = -EBADF;
        char proc[32]; /* "/proc/self/fd/" and an int */
        struct stat st, got;
        int r;

        if (fstat(pfd, &st) < 0)
                return negative_errno();
        *ret_st = st;
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        (void) snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        fd = open(proc, READ_OPEN_FLAGS_BASE);
        if (fd < 0 && (errno == ENOENT || errno == EACCES || errno == EPERM)) {
                if (how) {
                        struct open_how again = *how;

                        again.flags = READ_OPEN_FLAGS;
                        fd = (int) syscall(SYS_openat2, dfd, name, &again, sizeof again);
                } else
                        fd = openat(dfd, name, flags | READ_OPEN_FLAGS_BASE);
        }
        if (fd < 0)
                return negative_errno();
        r = fd_regular(fd, &got);
        if (r < 0)
                return r;
        if (got.st_dev != st.st_dev || got.st_ino != st.st_ino)
                return -EBADFD; /* replaced between the two opens */
        return TAKE_FD(fd);
}

int open_regular(int dfd, const char *path, int flags, struct stat *ret_st) {
        _cleanup_close_ int pfd = openat(dfd, path, (flags & O_NOFOLLOW) | PATH_OPEN_FLAGS);
        struct stat st = {};
        int r;

        if (pfd < 0)
                return negative_errno();
        r = reopen_regular(pfd, dfd, path, flags, NULL, &st);
        if (ret_st)
                *ret_st = st; /* also when refused: the caller may say what it was */
        return r;
}

/* Reads the fd, opened with READ_OPEN_FLAGS, as read_file_stat() does. */
static int read_fd(int fd, size_t max, char **ret_data, size_t *ret_size, struct stat *ret_st) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;
        int r;

        r = fd_regular(fd, &st);
        if (r < 0)
                return r;
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
        if (ret_st)
                *ret_st = st;
        return 0;
}

int read_file_stat(const char *path, size_t max, char **ret_data, size_t *ret_size, struct stat *ret_st) {
        _cleanup_close_ int fd = open_regular(AT_FDCWD, path, O_NOFOLLOW, NULL);

        if (fd < 0)
                return fd;
        return read_fd(fd, max, ret_data, ret_size, ret_st);
}

int read_file_at(int dfd, const char *path, int flags, size_t max, char **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = open_regular(dfd, path, flags, NULL);

        if (fd < 0)
                return fd;
        return read_fd(fd, max, ret_data, ret_size, NULL);
}

int lock_file_for_update(const char *path) {
        /* Each round follows one replacement; this many in a row while
         * waiting is a writer that does not take the lock. */
        for (unsigned i = 0; i < 64; i++) {
                struct stat st, now;
                _cleanup_close_ int fd = open_regular(AT_FDCWD, path, O_NOFOLLOW, &st);

                if (fd < 0)
                        return fd;
                while (flock(fd, LOCK_EX) < 0)
                        if (errno != EINTR)
                                return negative_errno();
                if (fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return negative_errno();
                        continue;
                }
                if (now.st_dev == st.st_dev && now.st_ino == st.st_ino)
                        return TAKE_FD(fd);
        }
        return -EBUSY;
}
char *tmp_template(const char *name) {
        const char *dir = secure_getenv("TMPDIR");
        struct stat st;
        char *s;

        /* A relative, missing or non-directory $TMPDIR would put the file
         * somewhere unexpected: /tmp then, as mkstemp(3) callers do. */
        if (!dir || dir[0] != '/' || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                dir = "/tmp";
        if (asprintf(&s, "%s/%s.XXXXXX", dir, name) < 0)
                return NULL;
        return s;
}

/* ---- resolving without symlinks --------------------------------------------
 *
 * Root writes below directories that the service user owns (its podman
 * state, the registry's storage and socket directory). That user can turn
 * any component it owns into a symlink at any moment, so a check of the
 * last component alone (lstat, O_NOFOLLOW) is not enough: /var/tmp/podman-
 * UID/xdg-config -> /etc would have root write /etc/containers/... with the
 * user as owner. Every write here therefore resolves its directory without
 * following a symlink in any component, and then works relative to that
 * directory's fd, so nothing swapped later can redirect it.
 *
 * openat2(RESOLVE_NO_SYMLINKS) (Linux 5.6) does it in one call; elsewhere,
 * or when a seccomp filter denies it, the same is done one component at a
 * time with O_NOFOLLOW opens. Either refuses a symlink with -ELOOP. This
 * also refuses distribution symlinks such as /var/run: managed paths must
 * be real directories (a storage on another disk: a mount, not a link). */

bool fileio_force_fd_walk = false;

/* openat(dfd, name) of one component that must be a directory and not a
 * symlink: -ELOOP for a symlink, -ENOTDIR for anything else. */
static int open_component(int dfd, const char *name, int flags) {
        struct stat st;
        int fd = openat(dfd, name, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd >= 0)
                return fd;
        if (errno != ENOTDIR && errno != ELOOP)
                return negative_errno();
        /* O_PATH|O_NOFOLLOW on a symlink says ENOTDIR: tell them apart. */
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        return -ENOTDIR;
}

/* The fd of the directory path resolves to, one component at a time; with
 * create, missing components are made with mode 0755 (whatever the umask:
 * parents must be traversable by the users we hand subtrees to). */
static int walk_directory(const char *path, bool create) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -EBADF;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                int next = open_component(fd, c, O_PATH);

                if (next == -ENOENT && create) {
                        _cleanup_close_ int made = -EBADF;

                        if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        made = open_component(fd, c, O_RDONLY);
                        if (made < 0)
                                return made;
                        if (fchmod(made, 0755) < 0)
                                return negative_errno();
                        next = TAKE_FD(made);
                }
                if (next < 0)
                        return next;
                (void) close(fd);
                fd = next;
        }
        return TAKE_FD(fd);
}

/* An O_PATH fd of the directory path, no symlink followed on the way. */
static int open_directory_nofollow(const char *path) {
        if (!fileio_force_fd_walk) {
                struct open_how how = {
                        .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
                };
                long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);

                if (fd >= 0)
                        return (int) fd;
                /* Missing (ENOSYS) or filtered (EPERM): walk instead. */
                if (errno != ENOSYS && errno != EPERM)
                        return negative_errno();
        }
        return walk_directory(path, false);
}

/* The fd of rel below dfd, READ_OPEN_FLAGS, no symlink nor ".." on the way; only a regular file
 * (reopen_regular()). */
static int open_beneath(int dfd, const char *rel) {
        _cleanup_free_ char *copy = strdup(rel);
        _cleanup_close_ int fd = -EBADF, pfd = -EBADF;
        struct stat st;
        char *save = NULL, *c, *next;

        if (!copy)
                return -ENOMEM;
        if (rel[0] == '/')
                return -EXDEV;
        if (!fileio_force_fd_walk) {
                struct open_how how = {
                        .flags = PATH_OPEN_FLAGS | O_NOFOLLOW,
                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
                };

                pfd = (int) syscall(SYS_openat2, dfd, rel, &how, sizeof how);
                if (pfd >= 0)
                        return reopen_regular(pfd, dfd, rel, 0, &how, &st);
                if (errno != ENOSYS && errno != EPERM)
                        return negative_errno();
        }
        fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        for (c = strtok_r(copy, "/", &save); c; c = next) {
                int sub;

                if (streq(c, ".."))
                        return -EXDEV; /* what RESOLVE_BENEATH says */
                next = strtok_r(NULL, "/", &save);
                if (!next)
                        break;
                sub = open_component(fd, c, O_PATH);
                if (sub < 0)
                        return sub;
                (void) close(fd);
                fd = sub;
        }
        if (!c)
                return -EINVAL;
        pfd = openat(fd, c, PATH_OPEN_FLAGS | O_NOFOLLOW);
        if (pfd < 0)
                return negative_errno();
        return reopen_regular(pfd, fd, c, O_NOFOLLOW, NULL, &st);
}

int read_file_beneath(int dfd, const char *rel, size_t max, char **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = open_beneath(dfd, rel);

        if (fd < 0)
                return fd;
        return read_fd(fd, max, ret_data, ret_size, NULL);
}

/* Splits path into its directory, opened as above, and its last component
 * (a pointer into path). "a/b/" names b in a; "/", "." and ".." as the last
 * component are not files we manage (-EINVAL). */
static int open_parent(const char *path, char **ret_name, int *ret_dfd) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash, *name;
        size_t len;
        int dfd;

        if (!copy)
                return -ENOMEM;
        len = strlen(copy);
        while (len > 1 && copy[len - 1] == '/')
                copy[--len] = 0;
        slash = strrchr(copy, '/');
        name = slash ? slash + 1 : copy;
        if (!*name || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        name = strdup(name);
        if (!name)
                return -ENOMEM;
        if (!slash)
                dfd = open_directory_nofollow(".");
        else if (slash == copy)
                dfd = open_directory_nofollow("/");
        else {
                *slash = 0;
                dfd = open_directory_nofollow(copy);
        }
        if (dfd < 0) {
                free(name);
                return dfd;
        }
        *ret_name = name;
        *ret_dfd = dfd;
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

/* An O_PATH fd cannot be fsync'ed: reopen the directory itself. */
static int fsync_directory(int dfd) {
        _cleanup_close_ int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

#define TMP_INFIX ".regvisor-tmp-"
#define TMP_SUFFIX_LEN 6

/* Temporary files a killed writer left behind are removed by the next
 * writer of the same path, so an interrupted run converges to a clean tree. */
static void remove_stale_temporaries(int dfd, const char *name) {
        _cleanup_free_ char *prefix = NULL;
        DIR *d;
        int fd;

        if (asprintf(&prefix, "%s" TMP_INFIX, name) < 0)
                return;
        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return;
        }
        for (struct dirent *e; (e = readdir(d));)
                if (strneq(e->d_name, prefix, strlen(prefix)) && strlen(e->d_name) == strlen(prefix) + TMP_SUFFIX_LEN)
                        (void) unlinkat(dfd, e->d_name, 0);
        closedir(d);
}

/* Creates NAME.regvisor-tmp-XXXXXX in dfd, mode 0600, never through a
 * symlink; *ret_tmp is its name. */
static int create_temporary(int dfd, const char *name, char **ret_tmp) {
        static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

        for (int attempt = 0; attempt < 100; attempt++) {
                _cleanup_free_ char *tmp = NULL;
                unsigned char rnd[TMP_SUFFIX_LEN];
                char suffix[TMP_SUFFIX_LEN + 1];
                int fd;

                if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
                        return -EIO;
                for (size_t i = 0; i < TMP_SUFFIX_LEN; i++)
                        suffix[i] = chars[rnd[i] % (sizeof chars - 1)];
                suffix[TMP_SUFFIX_LEN] = 0;
                if (asprintf(&tmp, "%s" TMP_INFIX "%s", name, suffix) < 0)
                        return -ENOMEM;
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd >= 0) {
                        *ret_tmp = TAKE_PTR(tmp);
                        return fd;
                }
                if (errno != EEXIST)
                        return negative_errno();
        }
        return -EEXIST;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *name = NULL, *tmp = NULL;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        struct stat st;
        int r;

        r = open_parent(path, &name, &dfd);
        if (r < 0)
                return r;

        /* Never replace something that is not a regular file: a symlink or a
         * directory at a managed path is a mistake to report. */
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
                return S_ISLNK(st.st_mode) ? -ELOOP : -EISDIR;

        remove_stale_temporaries(dfd, name);
        fd = create_temporary(dfd, name, &tmp);
        if (fd < 0)
                return fd;

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
        if (renameat(dfd, tmp, dfd, name) < 0) {
                r = negative_errno();
                goto fail;
        }
        return fsync_directory(dfd);

fail:
        (void) unlinkat(dfd, tmp, 0);
        return r;
}

static int stat_nofollow(const char *path, struct stat *st) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -EBADF;
        int r;

        r = open_parent(path, &name, &dfd);
        if (r == -ENOENT) /* a parent is missing: so is path */
                return 0;
        if (r < 0)
                return r;
        if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
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

/* fchown + fchmod of name in dfd, opened without following a symlink: a
 * plain open suffices for the files and directories we manage (we may read
 * them), and fchmod needs more than an O_PATH fd. */
static int set_mode_owner_at(int dfd, const char *name, int flags, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dfd, name, flags | O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        return 0;
}

int set_mode_owner(const char *path, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -EBADF;
        int r;

        r = open_parent(path, &name, &dfd);
        if (r < 0)
                return r;
        return set_mode_owner_at(dfd, name, 0, mode, uid, gid);
}

int mkdir_parents(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash;
        int fd;

        if (!copy)
                return -ENOMEM;
        slash = strrchr(copy, '/');
        if (!slash || slash == copy)
                return 0; /* the parent is "." or "/" */
        *slash = 0;
        fd = walk_directory(copy, true);
        if (fd < 0)
                return fd;
        (void) close(fd);
        return 0;
}

int ensure_directory(const char *path, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -EBADF;
        struct stat st;
        int r;

        r = mkdir_parents(path);
        if (r < 0)
                return r;
        r = open_parent(path, &name, &dfd);
        if (r < 0)
                return r;
        /* Create with no permissions for others, then set the final mode. */
        if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return set_mode_owner_at(dfd, name, O_DIRECTORY, mode, uid, gid);
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

/* Empties the directory fd (owned by the caller), depth first, on one file
 * system: a mount point below it is -EXDEV, not descended into. */
static int empty_directory_at(int fd, dev_t dev) {
        _cleanup_close_ int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (dup_fd < 0)
                return negative_errno();
        d = fdopendir(dup_fd);
        if (!d)
                return negative_errno();
        TAKE_FD(dup_fd);
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = -EBADF;

                        if (st.st_dev != dev) {
                                r = -EXDEV;
                                break;
                        }
                        sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = sub < 0 ? negative_errno() : empty_directory_at(sub, dev);
                        if (r >= 0 && unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0)
                                r = negative_errno();
                } else if (unlinkat(fd, de->d_name, 0) < 0)
                        r = negative_errno();
        }
        if (r >= 0 && errno != 0)
                r = negative_errno();
        closedir(d);
        return r;
}

/* unlinkat() of path's last component in its directory (resolved with no
 * symlink), flags AT_REMOVEDIR for a directory, emptied first with
 * recursive. */
static int remove_entry(const char *path, int flags, bool recursive) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        struct stat st;
        int r;

        r = open_parent(path, &name, &dfd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (recursive) {
                fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return errno == ENOENT ? 0 : negative_errno();
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                r = empty_directory_at(fd, st.st_dev);
                if (r < 0)
                        return r;
        }
        if (unlinkat(dfd, name, flags) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        r = fsync_directory(dfd);
        return r < 0 ? r : 1;
}

int remove_file(const char *path) {
        return remove_entry(path, 0, false);
}

int remove_directory(const char *path, bool recursive) {
        return remove_entry(path, AT_REMOVEDIR, recursive);
}
