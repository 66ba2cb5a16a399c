/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "sigmanifest.h"

const char sigmanifest_config[] = "{\"regvisor\":\"simple-signing signatures\",\"version\":1}";

void sigmanifest_tag(const char *digest, char ret[static SIGMANIFEST_TAG_LEN + 1]) {
        /* "sha256:HEX" -> "sha256-HEX.simplesig": a tag may not hold ":". */
        memcpy(ret, "sha256-", 7);
        memcpy(ret + 7, digest + 7, 64);
        memcpy(ret + 71, SIGMANIFEST_TAG_SUFFIX, sizeof(SIGMANIFEST_TAG_SUFFIX));
}

void sigmanifest_sig_tag(const char *digest, const char *content_digest, char ret[static SIGMANIFEST_SIG_TAG_LEN + 1]) {
        sigmanifest_tag(digest, ret);
        ret[SIGMANIFEST_TAG_LEN] = '.';
        memcpy(ret + SIGMANIFEST_TAG_LEN + 1, content_digest + 7, SIGMANIFEST_SIG_HEX);
        ret[SIGMANIFEST_SIG_TAG_LEN] = '\0';
}

static bool lower_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

bool sigmanifest_is_sig_tag_of(const char *tag, size_t n, const char *digest) {
        char prefix[SIGMANIFEST_TAG_LEN + 1];

        if (n != SIGMANIFEST_SIG_TAG_LEN)
                return false;
        sigmanifest_tag(digest, prefix);
        return memcmp(tag, prefix, SIGMANIFEST_TAG_LEN) == 0 && tag[SIGMANIFEST_TAG_LEN] == '.' &&
               lower_hex(tag + SIGMANIFEST_TAG_LEN + 1, SIGMANIFEST_SIG_HEX);
}

bool sigmanifest_is_tag(const char *tag, size_t n) {
        char digest[SIGSTORE_DIGEST_LEN];

        if (n == SIGMANIFEST_SIG_TAG_LEN) {
                if (tag[SIGMANIFEST_TAG_LEN] != '.' || !lower_hex(tag + SIGMANIFEST_TAG_LEN + 1, SIGMANIFEST_SIG_HEX))
                        return false;
                n = SIGMANIFEST_TAG_LEN;
        }
        if (n != SIGMANIFEST_TAG_LEN || memcmp(tag, "sha256-", 7) != 0 ||
            memcmp(tag + SIGSTORE_DIGEST_LEN, SIGMANIFEST_TAG_SUFFIX, n - SIGSTORE_DIGEST_LEN) != 0)
                return false;
        memcpy(digest, "sha256:", 7);
        memcpy(digest + 7, tag + 7, 64);
        return sigcheck_digest(digest, sizeof(digest));
}

int sigmanifest_repository(const char *repository, size_t len, const char *digest, char ret[static 256]) {
        if (len > SIGMANIFEST_REPOSITORY_BASE_MAX)
                return -ENAMETOOLONG;
        memcpy(ret, repository, len);
        ret[len] = '/';
        sigmanifest_tag(digest, ret + len + 1);
        return 0;
}

bool sigmanifest_is_repository(const char *repository, size_t len) {
        const char *slash = memrchr(repository, '/', len);

        if (!slash)
                return false;
        return (size_t) (repository + len - slash - 1) == SIGMANIFEST_TAG_LEN &&
               sigmanifest_is_tag(slash + 1, SIGMANIFEST_TAG_LEN);
}

int sigmanifest_build(const SigLayer *layers, size_t n, const char *signed_digest, const char *config_digest,
                      char **ret_json, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (n > SIGSTORE_MAX_PER_DIGEST)
                return -EINVAL;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f,
                "{\"schemaVersion\":2,\"mediaType\":\"" SIGMANIFEST_TYPE "\","
                "\"config\":{\"mediaType\":\"" SIGMANIFEST_CONFIG_TYPE "\",\"digest\":\"%s\",\"size\":%zu},"
                "\"layers\":[",
                config_digest, strlen(sigmanifest_config));
        for (size_t i = 0; i < n; i++)
                fprintf(f,
                        "%s{\"mediaType\":\"" SIGMANIFEST_LAYER_TYPE "\",\"digest\":\"%s\",\"size\":%zu,"
                        "\"annotations\":{\"" SIGMANIFEST_NAME_ANNOTATION "\":\"%s\"}}",
                        i ? "," : "", layers[i].digest, layers[i].size, layers[i].suffix);
        fprintf(f, "],\"annotations\":{\"" SIGMANIFEST_DIGEST_ANNOTATION "\":\"%s\"}}", signed_digest);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret_len = size;
        *ret_json = TAKE_PTR(buf);
        return 0;
}

/* o[key] as a string, or NULL when absent or of another type. */
static const char *get_string(json_object *o, const char *key, size_t *ret_len) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        *ret_len = (size_t) json_object_get_string_len(v);
        return json_object_get_string(v);
}

static bool string_is(json_object *o, const char *key, const char *want) {
        size_t n;
        const char *s = get_string(o, key, &n);

        return s && n == strlen(want) && memcmp(s, want, n) == 0;
}

/* One layer descriptor into *ret; a static phrase on failure. */
static const char *parse_layer(json_object *l, SigLayer *ret) {
        json_object *size, *ann;
        const char *s;
        size_t n;
        int64_t v;

        if (!json_object_is_type(l, json_type_object) || !string_is(l, "mediaType", SIGMANIFEST_LAYER_TYPE))
                return "a layer is not a signature";
        s = get_string(l, "digest", &n);
        if (!s || !sigcheck_digest(s, n))
                return "a layer's digest is not sha256";
        memcpy(ret->digest, s, n + 1);
        if (!json_object_object_get_ex(l, "size", &size) || !json_object_is_type(size, json_type_int))
                return "a layer has no size";
        v = json_object_get_int64(size);
        if (v < 1 || v > SIGSTORE_MAX_SIGNATURE)
                return "a layer's size is out of bounds";
        ret->size = (size_t) v;
        if (!json_object_object_get_ex(l, "annotations", &ann) || !json_object_is_type(ann, json_type_object))
                return "a layer has no annotations";
        s = get_string(ann, SIGMANIFEST_NAME_ANNOTATION, &n);
        if (!s || !sigcheck_suffix(s, n))
                return "a layer has no valid signature name";
        memcpy(ret->suffix, s, n + 1);
        return NULL;
}

int sigmanifest_parse(const char *json, size_t len, const char *signed_digest,
                      SigLayer ret[static SIGSTORE_MAX_PER_DIGEST], size_t *ret_n, const char **ret_why) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        json_object *v, *layers, *ann;
        size_t n;

#define FAIL(why)                        \
        do {                             \
                if (ret_why)             \
                        *ret_why = why;  \
                return -EBADMSG;         \
        } while (0)

        if (len > SIGMANIFEST_MAX)
                FAIL("the manifest is too large");
        /* Depth 5: manifest, layers, a layer, its annotations, a value. */
        tok = json_tokener_new_ex(5);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, json, (int) len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len ||
            !json_object_is_type(o, json_type_object))
                FAIL("not one JSON object");
        if (!json_object_object_get_ex(o, "schemaVersion", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) != 2)
                FAIL("schemaVersion is not 2");
        if (!string_is(o, "mediaType", SIGMANIFEST_TYPE))
                FAIL("not an OCI image manifest");
        if (!json_object_object_get_ex(o, "config", &v) || !json_object_is_type(v, json_type_object) ||
            !string_is(v, "mediaType", SIGMANIFEST_CONFIG_TYPE))
                FAIL("the config is not a signature store's");
        if (!json_object_object_get_ex(o, "annotations", &ann) || !json_object_is_type(ann, json_type_object) ||
            !string_is(ann, SIGMANIFEST_DIGEST_ANNOTATION, signed_digest))
                FAIL("the manifest is for another digest");
        if (!json_object_object_get_ex(o, "layers", &layers) || !json_object_is_type(layers, json_type_array))
                FAIL("no layers");
        n = json_object_array_length(layers);
        if (n > SIGSTORE_MAX_PER_DIGEST)
                FAIL("more layers than signatures a digest may have");
        for (size_t i = 0; i < n; i++) {
                const char *why = parse_layer(json_object_array_get_idx(layers, i), &ret[i]);

                if (why)
                        FAIL(why);
                for (size_t k = 0; k < i; k++)
                        if (streq(ret[k].suffix, ret[i].suffix))
                                FAIL("a signature name occurs twice");
        }
#undef FAIL
        *ret_n = n;
        return 0;
}

int sigmanifest_add(SigLayer layers[static SIGSTORE_MAX_PER_DIGEST], size_t *n, const SigLayer *add) {
        for (size_t i = 0; i < *n; i++) {
                if (streq(layers[i].digest, add->digest))
                        return 1;
                if (streq(layers[i].suffix, add->suffix))
                        return -EEXIST;
        }
        if (*n >= SIGSTORE_MAX_PER_DIGEST)
                return -EDQUOT;
        layers[(*n)++] = *add;
        return 0;
}
