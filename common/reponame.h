/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The distribution spec's repository name, in one place: the signature
 * store's paths (common/http/sigcheck.c) and the push scopes (scope.c)
 * read names the way the registry does. Pure.
 */

#include <stdbool.h>
#include <stddef.h>

/* The distribution reference's NameTotalLengthMax. */
#define REPONAME_MAX 255

/* One path-component: alnum runs joined by exactly one separator, where a
 * separator is ".", "_", "__" or any number of "-". Returns its length, or 0
 * when s[0..n) does not start with a valid component that ends at n or a
 * "/". */
size_t reponame_component_len(const char *s, size_t n);

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 * and at most REPONAME_MAX bytes. Case-sensitive: upper case is refused,
 * and so are "..", empty components and a leading or trailing "/". */
bool reponame_valid(const char *s, size_t n);
