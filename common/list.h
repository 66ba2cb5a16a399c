/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Intrusive doubly linked lists: the element carries its own prev and next
 * pointers (named by the caller, so one element can sit in two lists).
 */

/* Unlinks item from the list whose first element is *head and, when tail is
 * not NULL, whose last is *tail; item's prev and next are NULL after. */
#define LIST_UNLINK(head, tail, item, prev, next)                                                 \
        do {                                                                                      \
                __typeof__(item) i_ = (item), *t_ = (tail);                                       \
                if (i_->prev)                                                                     \
                        i_->prev->next = i_->next;                                                \
                else                                                                              \
                        *(head) = i_->next;                                                       \
                if (i_->next)                                                                     \
                        i_->next->prev = i_->prev;                                                \
                else if (t_)                                                                      \
                        *t_ = i_->prev;                                                           \
                i_->prev = i_->next = NULL;                                                       \
        } while (0)
