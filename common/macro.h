/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small helpers shared by every part of regvisor: cleanup attributes in the
 * shape of systemd's _cleanup_, ownership transfer and a few array macros.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* A macro's value as a string literal: STRINGIFY(20) is "20". */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* Hand ownership of a pointer on: returns it and leaves NULL behind, so the
 * cleanup attribute of the old owner does nothing. */
#define TAKE_PTR(p)                                                            \
        ({                                                                     \
                __typeof__(p) _p_ = (p);                                       \
                (p) = NULL;                                                    \
                _p_;                                                           \
        })

#define TAKE_FD(fd)                                                            \
        ({                                                                     \
                int _fd_ = (fd);                                               \
                (fd) = -EBADF;                                                 \
                _fd_;                                                          \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* free() of each of n pointers; free_many(a, b, c) for a release function
 * that owns a list of fields (systemd's free_many()). */
static inline void free_array(void *const *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(p[i]);
}
#define free_many(...) free_array((void *const[]){__VA_ARGS__}, ELEMENTSOF(((void *const[]){__VA_ARGS__})))

/* The number of strings in a NULL-terminated array; NULL counts 0. */
static inline size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

/* Free a NULL-terminated array of strings and the array itself. */
static inline void strv_free(char **l) {
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* The value of a hex digit, either case, or -1 (systemd's unhexchar()). */
static inline int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* errno as a negative value, never 0: for call sites after a failed libc call. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
