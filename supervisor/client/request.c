/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "fileio.h"
#include "macro.h"
#include "openssl-util.h"
#include "pki.h"
#include "request.h"

int client_request(const char *root, const char *name, const char *csr_path, char **ret_error) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_free_ char *rel = NULL, *path = NULL, *dir = NULL, *pem = NULL, *csr = NULL;
        size_t n;
        int r;

        if (asprintf(&rel, CLIENT_OWN_KEYS_DIR "/%s.key", name) < 0)
                return -ENOMEM;
        path = path_join_root(root, rel);
        dir = path_join_root(root, CLIENT_OWN_KEYS_DIR);
        if (!path || !dir)
                return -ENOMEM;
        r = read_file(path, 64 * 1024, &pem, &n);
        if (r >= 0) {
                r = pki_key_from_pem(pem, n, &key);
                OPENSSL_cleanse(pem, n);
                if (r < 0 && asprintf(ret_error, "%s: not a private key; remove it to make a new one", path) < 0)
                        *ret_error = NULL;
        } else if (r == -ENOENT) {
                r = pki_generate_key(KEY_EC_P256, &key);
                if (r >= 0)
                        r = pki_key_to_pem(key, &pem, &n);
                if (r >= 0) {
                        /* The directory 0700 and the file created 0600:
                         * never readable by others, not for a moment. */
                        r = ensure_directory(dir, 0700, geteuid(), getegid());
                        if (r >= 0)
                                r = write_file_atomic(path, pem, n, 0600, geteuid(), getegid());
                        OPENSSL_cleanse(pem, n);
                        if (r < 0 && asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                                *ret_error = NULL;
                }
        } else if (asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                *ret_error = NULL;
        if (r < 0)
                return r;
        r = pki_make_csr(key, name, &req);
        if (r >= 0)
                r = pki_csr_to_pem(req, &csr, &n);
        if (r < 0)
                return r;
        r = write_file_atomic(csr_path, csr, n, 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0 && asprintf(ret_error, "%s: %s", csr_path, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}
