/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor sigstore`: the signature store process (docs/signature-extension.md).
 * It serves the registry signature extension (GET and PUT of
 * /extensions/v2/<name>/signatures/<digest>) over HTTP/1.1 on a unix
 * socket, for the proxy workers to forward to, and keeps the signatures
 * below one directory.
 */

typedef struct SigstoreOptions {
        const char *socket_path;  /* created here (a stale socket is replaced), mode 0660 */
        const char *dir;          /* the store's directory, owned by user */
        const char *user;         /* the user it runs as (the service user) */
        const char *socket_group; /* the socket's group (the proxy's), or NULL: as created */
        /* [signing] store = registry: the registry's address ("unix:PATH", "IP:PORT"), where the
         * signatures are kept (sigreg.h); dir then stays empty. NULL: below dir. */
        const char *registry;
} SigstoreOptions;

/*
 * Runs the store in the foreground, as root until the lockdown: binds the
 * socket (owner root, group socket_group), drops to user with no
 * capabilities, opens dir as user, confines itself (Landlock to dir where
 * the kernel has it, the seccomp table), removes temp files left by a
 * crash, and serves until killed (SIGTERM's default action is fine: every
 * write is atomic). Logs its own errors. Returns a negative errno on a
 * setup failure or a fatal loop error.
 */
int sigstore_run(const SigstoreOptions *o);
