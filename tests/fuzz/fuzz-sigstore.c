/* SPDX-License-Identifier: MIT */
/*
 * Fuzzer for the signature store's input checks: sigstore/sigcheck.c and
 * sigstore/sigjson.c, and the registry's signature manifests
 * (sigstore/sigmanifest.c). The first input byte, modulo 3, picks what the
 * rest is:
 *   0: a request target for sigcheck_parse_path(). Checked: on success
 *     the repository is 1-255 bytes of [a-z0-9._/-] with no empty, "." or
 *     ".." component and no leading or trailing separator, the digest is
 *     "sha256:" and 64 lower-case hex, and both lie inside the target;
 *   1: a PUT body for sigjson_parse_put() (digest fixed). Checked: on
 *     success the suffix is safe as a file name, the content is 1-64 KiB,
 *     and the GET list built from it parses back (json-c) to an object with
 *     the same name and a base64 content that decodes to the same bytes;
 *   2: a manifest found at a signature tag, for sigmanifest_parse(). Checked:
 *     on success at most 16 layers, each with a safe name, a sha256 digest
 *     and a size of 1-64 KiB, no name twice; the manifest built from them
 *     parses back to the same layers.
 */

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "sigcheck.h"
#include "sigjson.h"
#include "sigmanifest.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *t, size_t n) {
        SigPath p;
        const char *r;

        if (sigcheck_parse_path(t, n, &p) < 0)
                return;
        r = p.repository;
        CHECK(r >= t && r + p.repository_len <= t + n && p.digest + p.digest_len == t + n);
        CHECK(p.repository_len >= 1 && p.repository_len <= 255);
        CHECK(r[0] != '/' && r[p.repository_len - 1] != '/' && strchr("._-", r[0]) == NULL);
        for (size_t i = 0; i < p.repository_len; i++) {
                char c = r[i];
                CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/');
                if (c == '/')
                        CHECK(r[i + 1] != '/' && r[i + 1] != '.' && r[i - 1] != '.');
        }
        CHECK(p.digest_len == 71 && memcmp(p.digest, "sha256:", 7) == 0);
        for (size_t i = 7; i < 71; i++)
                CHECK((p.digest[i] >= '0' && p.digest[i] <= '9') || (p.digest[i] >= 'a' && p.digest[i] <= 'f'));
}

static void check_put(const char *b, size_t n) {
        SigEntry e = {};
        char *list = NULL, name[256];
        size_t len;
        json_object *o, *sigs, *s0, *v;
        uint8_t *back;
        long got;

        if (sigjson_parse_put(b, n, DIGEST, strlen(DIGEST), &e, NULL) < 0)
                return;
        CHECK(sigcheck_suffix(e.suffix, strlen(e.suffix)) && e.suffix[0] != '.' && !strchr(e.suffix, '/'));
        CHECK(e.content_len >= 1 && e.content_len <= SIGSTORE_MAX_SIGNATURE);

        CHECK(sigjson_list(&e, 1, DIGEST, strlen(DIGEST), &list, &len) == 0);
        o = json_tokener_parse(list);
        CHECK(o && json_object_object_get_ex(o, "signatures", &sigs) && json_object_array_length(sigs) == 1);
        s0 = json_object_array_get_idx(sigs, 0);
        CHECK(json_object_object_get_ex(s0, "name", &v));
        (void) snprintf(name, sizeof(name), "%s@%s", DIGEST, e.suffix);
        CHECK(strcmp(json_object_get_string(v), name) == 0);
        CHECK(json_object_object_get_ex(s0, "content", &v));
        back = malloc(SIGSTORE_MAX_SIGNATURE);
        CHECK(back);
        got = sigjson_base64_decode(json_object_get_string(v), (size_t) json_object_get_string_len(v), back,
                                    SIGSTORE_MAX_SIGNATURE);
        CHECK(got == (long) e.content_len && memcmp(back, e.content, e.content_len) == 0);
        free(back);
        (void) json_object_put(o);
        free(list);
        free(e.content);
}

static void check_manifest(const char *m, size_t n) {
        SigLayer layers[SIGSTORE_MAX_PER_DIGEST], back[SIGSTORE_MAX_PER_DIGEST];
        size_t count = 0, count2 = 0, len = 0;
        char *json = NULL;

        if (sigmanifest_parse(m, n, DIGEST, layers, &count, NULL) < 0)
                return;
        CHECK(count <= SIGSTORE_MAX_PER_DIGEST);
        for (size_t i = 0; i < count; i++) {
                CHECK(sigcheck_suffix(layers[i].suffix, strlen(layers[i].suffix)) && layers[i].suffix[0] != '.');
                CHECK(sigcheck_digest(layers[i].digest, strlen(layers[i].digest)));
                CHECK(layers[i].size >= 1 && layers[i].size <= SIGSTORE_MAX_SIGNATURE);
                for (size_t k = 0; k < i; k++)
                        CHECK(strcmp(layers[k].suffix, layers[i].suffix) != 0);
        }
        CHECK(sigmanifest_build(layers, count, DIGEST, DIGEST, &json, &len) == 0);
        CHECK(sigmanifest_parse(json, len, DIGEST, back, &count2, NULL) == 0 && count2 == count);
        for (size_t i = 0; i < count; i++)
                CHECK(strcmp(back[i].suffix, layers[i].suffix) == 0 && strcmp(back[i].digest, layers[i].digest) == 0 &&
                      back[i].size == layers[i].size);
        free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0:
                check_path((const char *) data + 1, size - 1);
                break;
        case 1:
                check_put((const char *) data + 1, size - 1);
                break;
        default:
                check_manifest((const char *) data + 1, size - 1);
        }
        return 0;
}
