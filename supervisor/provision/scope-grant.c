/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "detail.h"
#include "fileio.h"
#include "macro.h"
#include "scope-grant.h"
#include "scope.h"

/* client's canonical line "CLIENT=P,P\n" in text (scope.h), or NULL. */
static const char *scope_line(const char *text, const char *client, size_t *ret_len) {
        size_t n = strlen(client);

        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
                if (strncmp(l, client, n) == 0 && l[n] == '=') {
                        const char *eol = strchrnul(l, '\n');
                        *ret_len = (size_t) (eol - l) + (*eol == '\n');
                        return l;
                }
        return NULL;
}

int scope_grant(const char *text, const char *name, const char *client, const char *patterns, char **ret_text,
                char **ret_error) {
        _cleanup_free_ char *want = NULL, *added = NULL, *error = NULL;
        _cleanup_(config_done) Config now = {}, after = {};
        const char *why = NULL, *have;
        size_t len = 0;
        int r;

        if (!config_client_name_valid(client))
                return detail_set(ret_error, -EINVAL, "'%s': not a client name", client);
        r = scope_entry_append(&want, client, patterns, false, &why);
        if (r == -EINVAL)
                return detail_set(ret_error, r, "--scope '%s': %s", patterns, why);
        if (r < 0)
                return r;
        r = config_init_defaults(&now);
        if (r >= 0)
                r = config_load_string(&now, text, name, &error);
        if (r < 0)
                return detail_set(ret_error, r, "%s", error ?: "cannot read the configuration");
        if (!now.push_scopes)
                return detail_set(ret_error, -ENOENT,
                                  "%s has no [scopes]: a first line would stop every other client's pushes; add "
                                  "[scopes] with a line for each client that pushes (e.g. 'ci = *') first",
                                  name);
        have = scope_line(now.push_scopes, client, &len);
        if (have && len == strlen(want) && strncmp(have, want, len) == 0)
                return 0;
        if (have)
                return detail_set(ret_error, -EEXIST,
                                  "%s: [scopes] already gives %s other patterns; change that line there", name,
                                  client);
        /* A section of its own after everything else: the line cannot
         * become a continuation of (or a key in) what comes before. Its
         * text is the canonical form (want is "CLIENT=P,P\n"), not the
         * argument: nothing else than the patterns gets into the file. */
        if (asprintf(&added, "%s%s\n[scopes]\n# regvisor pki sign --scope\n%s = %s", text,
                     *text && text[strlen(text) - 1] != '\n' ? "\n" : "", client, want + strlen(client) + 1) < 0)
                return -ENOMEM;
        r = config_init_defaults(&after);
        if (r >= 0)
                r = config_load_string(&after, added, name, &error);
        if (r < 0)
                return detail_set(ret_error, r, "%s", error ?: "the new configuration does not load");
        have = scope_line(after.push_scopes, client, &len);
        if (!have || len != strlen(want) || strncmp(have, want, len) != 0)
                return detail_set(ret_error, -EINVAL, "%s: the appended [scopes] line for %s did not read back", name,
                                  client);
        *ret_text = TAKE_PTR(added);
        return 1;
}

void (*scope_grant_file_hook)(void) = NULL;

int scope_grant_file(const char *path, const char *client, const char *patterns, char **ret_error) {
        _cleanup_free_ char *text = NULL, *added = NULL;
        _cleanup_close_ int lock = -1;
        struct stat st;
        int r;

        lock = lock_file_for_update(path);
        if (lock < 0)
                return detail_set(ret_error, lock, "%s: cannot lock it: %s", path, strerror(-lock));
        r = read_file_stat(path, 1024 * 1024, &text, NULL, &st);
        if (r < 0)
                return detail_set(ret_error, r, "%s: %s", path, strerror(-r));
        r = scope_grant(text, path, client, patterns, &added, ret_error);
        if (r <= 0)
                return r;
        if (scope_grant_file_hook)
                scope_grant_file_hook();
        r = write_file_atomic(path, added, strlen(added), st.st_mode & 07777, st.st_uid, st.st_gid);
        if (r < 0)
                return detail_set(ret_error, r, "%s: %s", path, strerror(-r));
        return 1;
}
