/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The secrets of a shared store ([registry] storage = swift or s3): the
 * [store] credentials_file and the [registry] http_secret_file. Both are
 * root's and readable by nobody else; anything else is refused (fail closed:
 * a secret others could read is no longer one). Their values go into the
 * registry's own configuration file only (0640 root:service_user).
 */

#include "config.h"

typedef struct {
        char *username;   /* swift */
        char *password;   /* swift */
        char *tenant;     /* swift, Keystone (auth_version 2, 3) */
        char *domain;     /* swift, Keystone v3 */
        char *access_key; /* s3 */
        char *secret_key; /* s3 */
} StoreCredentials;

/* Frees and zeroes (explicit_bzero) every value. */
void store_credentials_done(StoreCredentials *s);

/* Reads a secret file at path: a regular file (not a symlink), owned by root,
 * no permission for group or others (-EPERM otherwise), at most 64 KiB.
 * Returns 0 and the allocated text (NUL-terminated), or a negative errno with
 * *ret_error (allocated, naming the file and what was expected). */
int store_secret_file_read(const char *path, char **ret_text, char **ret_error);

/* Parses a credentials file's text: "key = value" lines (username,
 * password, tenant, domain, access_key, secret_key), '#' comments, blank
 * lines; values of printable characters. Checks that the keys the
 * configuration's kind needs are there. -EINVAL with *ret_error (file:line:
 * what was expected; never the value). */
int store_credentials_parse(const Config *c, const char *path, const char *text, StoreCredentials *ret,
                            char **ret_error);

/* Both of the above for [store] credentials_file. */
int store_credentials_load(const Config *c, StoreCredentials *ret, char **ret_error);

/* The registry's http.secret from [registry] http_secret_file: its first
 * line, 32 to 1024 of [A-Za-z0-9+/=_-]. */
int store_http_secret_load(const char *path, char **ret_secret, char **ret_error);
