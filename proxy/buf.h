/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A connection's bounded buffer: BUF_SIZE bytes, allocated on first use and
 * given back to malloc while empty between requests (buf_release()). Its
 * fullness is the proxy's backpressure: a side is read only while the
 * buffer it reads into has room. Data lives in [start, end).
 */

#include <stddef.h>

#define BUF_SIZE (64 * 1024) /* 64 KiB reads */

typedef struct Buf {
        char *data; /* BUF_SIZE bytes, or NULL while unused */
        size_t start, end;
} Buf;

static inline size_t buf_len(const Buf *b) {
        return b->end - b->start;
}

static inline size_t buf_room(const Buf *b) {
        return BUF_SIZE - buf_len(b);
}

/* Makes the buffer usable (allocates it): 0 or -ENOMEM. Data is never
 * moved here: see buf_tail(). */
int buf_prepare(Buf *b);

/* Contiguous free space at the end of an allocated buffer, after moving the
 * data to the front when that is cheap (see buf.c). */
size_t buf_tail(Buf *b);

/* Drops n bytes from the front; n <= buf_len(). */
void buf_consume(Buf *b, size_t n);

/* Appends n bytes; the caller checked buf_room(). 0 or -ENOMEM. */
int buf_append(Buf *b, const void *p, size_t n);

/* Frees the memory of an empty buffer (a busy one stays). */
void buf_release(Buf *b);

/* Frees the memory and whatever it held. */
void buf_free(Buf *b);
