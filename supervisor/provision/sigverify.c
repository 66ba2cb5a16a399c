/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gpghome.h"
#include "json-util.h"
#include "macro.h"
#include "sigverify.h"

/* The type every simple-signing payload names (containers/image,
 * signature/simple.go). */
#define SIMPLE_SIGNING_TYPE "atomic container signature"
#define PAYLOAD_MAX (64 * 1024)

struct SigVerifier {
        char *home;
        gpgme_ctx_t ctx;
};

SigVerifier *sigverify_free(SigVerifier *v) {
        if (!v)
                return NULL;
        if (v->ctx)
                gpgme_release(v->ctx);
        gpghome_removep(&v->home);
        free(v);
        return NULL;
}

int sigverify_new(const SignKeys *k, SigVerifier **ret, char **ret_error) {
        _cleanup_(sigverify_freep) SigVerifier *v = NULL;
        _cleanup_(gpgme_data_releasep) gpgme_data_t keys = NULL;
        gpgme_import_result_t imported;
        gpgme_error_t e = GPG_ERR_NO_ERROR;
        int r;

        r = gpghome_gpgme_init();
        if (r < 0)
                return r;
        v = calloc(1, sizeof *v);
        if (!v)
                return -ENOMEM;
        r = gpghome_new(&v->home);
        if (r < 0)
                return r;
        if (gpghome_context(v->home, &v->ctx, &e) == 0)
                e = gpgme_data_new_from_mem(&keys, k->data, k->size, 0);
        if (e == GPG_ERR_NO_ERROR)
                e = gpgme_op_import(v->ctx, keys);
        imported = e == GPG_ERR_NO_ERROR ? gpgme_op_import_result(v->ctx) : NULL;
        if (e != GPG_ERR_NO_ERROR || !imported || imported->imported == 0) {
                if (ret_error && asprintf(ret_error, "importing the signer keys: %s",
                                          e != GPG_ERR_NO_ERROR ? gpgme_strerror(e) : "no key imported") < 0)
                        *ret_error = NULL;
                return -EIO;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

/* A string member of o, or NULL. */
static const char *member_string(json_object *o, const char *key) {
        json_object *m;

        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &m) ||
            !json_object_is_type(m, json_type_string))
                return NULL;
        return json_object_get_string(m);
}

static json_object *member_object(json_object *o, const char *key) {
        json_object *m;

        if (!o || !json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_object))
                return NULL;
        return m;
}

/* Is the host part of a docker reference (with its port, if any) one of
 * names? "[::1]:4443" and "registry.test:4443" lose their ports. */
static bool host_is_ours(const char *host, size_t len, const char *const *names) {
        if (len > 0 && host[0] == '[') {
                const char *close = memchr(host, ']', len);
                if (!close)
                        return false;
                len = (size_t) (close - host) - 1;
                host++;
        } else {
                const char *colon = memchr(host, ':', len);
                if (colon)
                        len = (size_t) (colon - host);
        }
        for (size_t i = 0; names && names[i]; i++)
                if (strlen(names[i]) == len && strncasecmp(names[i], host, len) == 0)
                        return true;
        return false;
}

/* "HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]" against what is stored. */
static int reference_matches(const char *ref, const char *repository, const char *tag, const char *digest,
                             const char *const *names, const char **ret_why) {
        const char *slash = strchr(ref, '/'), *at, *path, *colon;
        size_t path_len;

        if (!slash || !host_is_ours(ref, (size_t) (slash - ref), names)) {
                *ret_why = "signed for another registry";
                return 1;
        }
        path = slash + 1;
        at = strchr(path, '@');
        if (at && !streq(at + 1, digest)) {
                *ret_why = "signed for another digest";
                return 1;
        }
        path_len = at ? (size_t) (at - path) : strlen(path);
        colon = memrchr(path, ':', path_len);
        if (colon && strchr(colon, '/'))
                colon = NULL;
        if (colon) {
                size_t tag_len = path_len - (size_t) (colon - path) - 1;
                if (tag && (strlen(tag) != tag_len || strncmp(colon + 1, tag, tag_len) != 0)) {
                        *ret_why = "signed for another tag";
                        return 1;
                }
                path_len = (size_t) (colon - path);
        }
        if (strlen(repository) != path_len || strncmp(path, repository, path_len) != 0) {
                *ret_why = "signed for another repository";
                return 1;
        }
        return 0;
}

int sigverify_payload(const char *payload, size_t len, const char *repository, const char *tag,
                      const char *digest, const char *const *names, const char **ret_why) {
        _cleanup_json_ json_object *root = NULL;
        json_tokener *tok;
        json_object *critical;
        const char *type, *signed_digest, *ref;

        if (len > PAYLOAD_MAX) {
                *ret_why = "payload too large";
                return 1;
        }
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, payload, (int) len);
        if (root && json_tokener_get_parse_end(tok) != len) {
                json_object_put(root);
                root = NULL;
        }
        json_tokener_free(tok);
        critical = member_object(root, "critical");
        type = member_string(critical, "type");
        signed_digest = member_string(member_object(critical, "image"), "docker-manifest-digest");
        ref = member_string(member_object(critical, "identity"), "docker-reference");
        if (!type || !signed_digest || !ref) {
                *ret_why = "not a simple-signing payload";
                return 1;
        }
        if (!streq(type, SIMPLE_SIGNING_TYPE)) {
                *ret_why = "not a container signature";
                return 1;
        }
        if (!streq(signed_digest, digest)) {
                *ret_why = "signed for another digest";
                return 1;
        }
        return reference_matches(ref, repository, tag, digest, names, ret_why);
}

/* GPGME's verdict on the one signature of the message, as
 * containers/image's mechanism_gpgme.go judges it. */
static const char *signature_problem(gpgme_verify_result_t res) {
        gpgme_signature_t s = res ? res->signatures : NULL;

        if (!s)
                return "no signature in it";
        if (s->next)
                return "more than one signature in it";
        if (gpgme_err_code(s->status) == GPG_ERR_NO_PUBKEY)
                return "signed by an untrusted key";
        if (s->status != GPG_ERR_NO_ERROR || s->validity == GPGME_VALIDITY_NEVER || s->validity_reason != 0 ||
            s->wrong_key_usage)
                return "signature does not verify";
        return NULL;
}

int sigverify_check(SigVerifier *v, const uint8_t *sig, size_t len, const char *repository, const char *tag,
                    const char *digest, const char *const *names, const char **ret_why) {
        _cleanup_(gpgme_data_releasep) gpgme_data_t in = NULL, out = NULL;
        gpgme_error_t e;
        const char *problem;
        char *payload;
        size_t payload_len;
        int r;

        e = gpgme_data_new_from_mem(&in, (const char *) sig, len, 0);
        if (e == GPG_ERR_NO_ERROR)
                e = gpgme_data_new(&out);
        if (e != GPG_ERR_NO_ERROR)
                return -ENOMEM;
        e = gpgme_op_verify(v->ctx, in, NULL, out);
        if (gpgme_err_code(e) == GPG_ERR_NO_DATA || gpgme_err_code(e) == GPG_ERR_BAD_DATA) {
                *ret_why = "not an OpenPGP signed message";
                return 1;
        }
        if (e != GPG_ERR_NO_ERROR)
                return -EIO;
        problem = signature_problem(gpgme_op_verify_result(v->ctx));
        if (problem) {
                *ret_why = problem;
                return 1;
        }
        payload = gpgme_data_release_and_get_mem(out, &payload_len);
        out = NULL;
        if (!payload && payload_len > 0)
                return -ENOMEM;
        r = sigverify_payload(payload ? payload : "", payload_len, repository, tag, digest, names, ret_why);
        gpgme_free(payload);
        return r;
}
