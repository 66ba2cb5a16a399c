/* SPDX-License-Identifier: MIT */
/* The maintenance state of `regvisor gc`: maintenance.h says why a lock. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "maintenance.h"

/* Every word the same length: one pwrite() replaces it whole, so a reader
 * never sees half of one. */
#define WORD_LEN 9
static const char words[_MAINTENANCE_MAX][WORD_LEN + 1] = {
        [MAINTENANCE_NONE] = "none     ",
        [MAINTENANCE_PUSH_CLOSED] = "closed   ",
        [MAINTENANCE_READONLY] = "readonly ",
};

const char *maintenance_mode_to_string(MaintenanceMode m) {
        static const char *const names[_MAINTENANCE_MAX] = {
                [MAINTENANCE_NONE] = "none",
                [MAINTENANCE_PUSH_CLOSED] = "pushes-closed",
                [MAINTENANCE_READONLY] = "read-only",
        };
        return m < _MAINTENANCE_MAX ? names[m] : "?";
}

/* 1 when another open file description holds a write lock on fd's file. */
static int lock_held(int fd) {
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};

        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return -errno;
        return fl.l_type == F_WRLCK;
}

MaintenanceMode maintenance_read(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        char buf[WORD_LEN];
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()))
                return MAINTENANCE_NONE;
        if (lock_held(fd) <= 0)
                return MAINTENANCE_NONE;
        if (pread(fd, buf, sizeof buf, 0) != (ssize_t) sizeof buf)
                return MAINTENANCE_PUSH_CLOSED; /* held, just created: the holder writes it next */
        for (int m = 0; m < _MAINTENANCE_MAX; m++)
                if (memcmp(buf, words[m], WORD_LEN) == 0)
                        return (MaintenanceMode) m;
        return MAINTENANCE_PUSH_CLOSED; /* held, unknown word: the safe side */
}

int maintenance_set(int fd, MaintenanceMode mode) {
        if (mode >= _MAINTENANCE_MAX)
                return -EINVAL;
        if (pwrite(fd, words[mode], WORD_LEN, 0) != WORD_LEN)
                return -EIO;
        return 0;
}

int maintenance_take(const char *path) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
                return -EPERM;
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
                return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
        if (fchmod(fd, 0644) < 0 || ftruncate(fd, WORD_LEN) < 0)
                return -errno;
        r = maintenance_set(fd, MAINTENANCE_PUSH_CLOSED);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

void maintenance_release(const char *path, int fd) {
        /* Removed while still locked: a reader sees the state end at once. */
        (void) unlink(path);
        if (fd >= 0)
                (void) close(fd);
}

static const struct {
        const char *name;
        size_t offset;
} gc_status_fields[] = {
        {"finished", offsetof(GcStatus, finished)},
        {"success", offsetof(GcStatus, success)},
        {"bytes_freed", offsetof(GcStatus, bytes_freed)},
        {"blobs_deleted", offsetof(GcStatus, blobs_deleted)},
        {"uploads_purged", offsetof(GcStatus, uploads_purged)},
        {"seconds", offsetof(GcStatus, seconds)},
};

int gc_status_write(const char *path, const GcStatus *st) {
        char buf[512];
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(gc_status_fields); i++) {
                int k = snprintf(buf + n, sizeof buf - n, "%s %llu\n", gc_status_fields[i].name,
                                 *(const unsigned long long *) ((const char *) st + gc_status_fields[i].offset));
                if (k < 0 || (size_t) k >= sizeof buf - n)
                        return -ENOBUFS;
                n += (size_t) k;
        }
        return write_file_atomic(path, buf, n, 0644, (uid_t) -1, (gid_t) -1);
}

int gc_status_read(const char *path, GcStatus *ret) {
        _cleanup_free_ char *data = NULL;
        GcStatus st = {};
        size_t size;
        int r;

        r = read_file(path, 4096, &data, &size);
        if (r < 0)
                return r;
        for (char *line = data, *next; line && *line; line = next) {
                char name[32];
                unsigned long long v;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (sscanf(line, "%31s %llu", name, &v) != 2)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(gc_status_fields); i++)
                        if (streq(name, gc_status_fields[i].name))
                                *(unsigned long long *) ((char *) &st + gc_status_fields[i].offset) = v;
        }
        *ret = st;
        return 0;
}
