/* SPDX-License-Identifier: MIT */
/*
 * The signature store as a child of `regvisor run`: `regvisor sigstore`
 * fork+exec'd before the proxy (so that the proxy's first /v2/ answer,
 * which announces the extension, finds it serving), restarted with its own
 * backoff when it exits, and stopped after the proxy has drained (the
 * proxy's last requests may still read signatures). SIGTERM's default
 * action is its stop: every write of the store is atomic.
 *
 * Why here and not in the proxy parent: `regvisor proxy` alone (tests,
 * benchmarks, operators supervising it elsewhere) then stays one process
 * that serves the extension only when told where the store is (--sigstore),
 * and proxy/ never learns the command line of another verb.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "supervisor.h"


static int on_sigstore_restart_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        s->sigstore.restart_timer = sd_event_source_disable_unref(s->sigstore.restart_timer);
        (void) sigstore_child_spawn(s);
        return 0;
}

static int on_sigstore_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Supervisor *s = userdata;

        child_reaped(&s->sigstore);
        if (s->state == SUP_STOPPING) {
                log_event(LOG_INFO, "sigstore-stopped", "signature store stopped");
                return 0;
        }
        child_exited(s, &s->sigstore, "sigstore-exited", "signature store", si, on_sigstore_restart_timer);
        return 0;
}

int sigstore_child_spawn(Supervisor *s) {
        char registry[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 16];
        bool in_registry = s->config.signature_store == SIGNATURES_REGISTRY;
        pid_t pid;

        if (in_registry && config_registry_address(&s->config.listen, registry, sizeof(registry)) < 0)
                return log_error_errno(-ENAMETOOLONG, "signature store: [registry] listen is too long");
        pid = child_fork("signature store");
        if (pid < 0)
                return pid;
        if (pid == 0) {
                /* [signing] store = registry: the store reaches the registry where the proxy does. */
                char *argv[] = {(char *) "regvisor",       (char *) "sigstore",
                                (char *) "--socket",       (char *) SIGSTORE_SOCKET_PATH,
                                (char *) "--dir",          (char *) SIGSTORE_DIR,
                                (char *) "--user",         s->config.service_user,
                                (char *) "--socket-group", s->config.proxy_user,
                                in_registry ? (char *) "--registry" : NULL,
                                registry,
                                NULL};
                execv("/proc/self/exe", argv);
                _exit(127);
        }
        return child_watch(s, &s->sigstore, pid, "signature store", "sigstore-start", on_sigstore_exit);
}

void sigstore_child_stop(Supervisor *s) {
        child_stop(&s->sigstore);
}

void sigstore_child_end(Supervisor *s) {
        child_end(&s->sigstore);
}
