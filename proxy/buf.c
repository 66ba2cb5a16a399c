/* SPDX-License-Identifier: MIT */
/*
 * The connection buffers: see buf.h.
 */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Makes the buffer usable. Data is never moved here: see buf_tail(). */
int buf_prepare(Buf *b) {
        if (!b->data) {
                b->data = malloc(BUF_SIZE);
                if (!b->data)
                        return -ENOMEM;
                b->start = b->end = 0;
        }
        return 0;
}

/* Contiguous free space at the end of an allocated buffer. The data is moved
 * to the front only when that is cheap: the free tail is under a quarter of
 * the buffer and the data fits in one. Compacting on every append moved up
 * to 48 KiB per 16 KiB TLS record sent (SSL_write sends one record per call)
 * in bulk transfers; a buffer that drains completely is reset for free by
 * buf_consume(). Never starves a parser: a head without its end is shorter
 * than HTTP1_MAX_HEAD (16 KiB), so it is always moved when it must grow,
 * and more than a quarter of buffered data is always consumable by its
 * reader. */
size_t buf_tail(Buf *b) {
        assert(b->data);
        if (b->start > 0 && BUF_SIZE - b->end < BUF_SIZE / 4 && buf_len(b) <= BUF_SIZE / 4) {
                memmove(b->data, b->data + b->start, buf_len(b));
                b->end -= b->start;
                b->start = 0;
        }
        return BUF_SIZE - b->end;
}

void buf_consume(Buf *b, size_t n) {
        assert(n <= buf_len(b));
        b->start += n;
        if (b->start == b->end)
                b->start = b->end = 0;
}

/* Appends n bytes; the caller checked buf_room(). */
int buf_append(Buf *b, const void *p, size_t n) {
        int r = buf_prepare(b);
        if (r < 0)
                return r;
        if (BUF_SIZE - b->end < n) {
                memmove(b->data, b->data + b->start, buf_len(b));
                b->end -= b->start;
                b->start = 0;
        }
        assert(BUF_SIZE - b->end >= n);
        memcpy(b->data + b->end, p, n);
        b->end += n;
        return 0;
}

void buf_release(Buf *b) {
        if (b->data && buf_len(b) == 0) {
                free(b->data);
                *b = (Buf){};
        }
}

void buf_free(Buf *b) {
        free(b->data);
        *b = (Buf){};
}
