/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "reponame.h"
#include "sigcheck.h"

#define SIGNATURES_SEGMENT "/signatures/"

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_lower_hex(char c) {
        return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

bool sigcheck_repository(const char *s, size_t n) {
        return reponame_valid(s, n);
}

bool sigcheck_digest(const char *s, size_t n) {
        if (n != SIGSTORE_DIGEST_LEN || memcmp(s, "sha256:", 7) != 0)
                return false;
        for (size_t i = 7; i < n; i++)
                if (!is_lower_hex(s[i]))
                        return false;
        return true;
}

bool sigcheck_suffix(const char *s, size_t n) {
        if (n == 0 || n > SIGSTORE_SUFFIX_MAX || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (!is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '_' && c != '.' && c != '-')
                        return false;
        }
        return true;
}

int sigcheck_parse_path(const char *target, size_t len, SigPath *ret) {
        const size_t plen = strlen(SIGSTORE_PATH_PREFIX), slen = strlen(SIGNATURES_SEGMENT);
        const char *name = target + plen, *digest;
        size_t rest, name_len;

        if (len < plen || memcmp(target, SIGSTORE_PATH_PREFIX, plen) != 0)
                return -ENOENT;
        rest = len - plen;

        /* The digest is the last segment, "signatures" the one before it: a repository may
         * itself have a component named "signatures" ("a/signatures/b"). */
        digest = memrchr(name, '/', rest);
        if (!digest)
                return -ENOENT;
        digest++;
        name_len = (size_t) (digest - name);
        if (name_len < slen || memcmp(digest - slen, SIGNATURES_SEGMENT, slen) != 0)
                return -ENOENT;
        name_len -= slen;

        if (!sigcheck_repository(name, name_len))
                return -EINVAL;
        if (!sigcheck_digest(digest, (size_t) (target + len - digest)))
                return -EBADMSG;

        *ret = (SigPath){
                .repository = name,
                .repository_len = name_len,
                .digest = digest,
                .digest_len = (size_t) (target + len - digest),
        };
        return 0;
}
