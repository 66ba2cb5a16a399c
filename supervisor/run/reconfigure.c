/* SPDX-License-Identifier: MIT */
/* SIGHUP re-reads the configuration without touching the registry (but
 * for a new [registry] image: checked, then the registry restarted on it),
 * all or nothing (reload.h says which keys need a restart instead):
 *
 *   reconf_start()    parse and check the file (a FILE:LINE error or the
 *                     restart-only keys refuse it here), take it, SIGHUP the
 *                     proxy and wait for its answer on the report pipe
 *   on_proxy_report() "ok": done; "failed": back to the previous
 *                     configuration, refused
 *   timeout, or the proxy exits meanwhile: refused
 *
 * Each outcome goes to RELOAD_STATUS_PATH, where `regvisor reload`
 * (ExecReload=) waits for it, to the journal (REGVISOR_EVENT=reloaded or
 * reload-failed) and to STATUS= until the next reload that applies. The
 * reload is not a state of the table: it runs alongside whatever the
 * registry does, and a SIGHUP in SUP_GAVE_UP also retries the registry. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "reload.h"
#include "supervisor.h"

static void reconf_finish(Supervisor *s, bool ok, const char *message) {
        int r;

        s->reload_pending = false;
        s->reload_timer = sd_event_source_disable_unref(s->reload_timer);
        free(TAKE_PTR(s->reload_refusal));
        free(s->reload_refused);
        s->reload_refused = ok ? NULL : strdup(message);
        log_event(ok ? LOG_INFO : LOG_ERR, ok ? "reloaded" : "reload-failed", "reload %lu %s: %s", s->reload_seq,
                  ok ? "applied" : "refused", message);
        r = reload_status_write(s->reload_status_path, s->reload_seq, ok, message);
        if (r < 0)
                log_warning("cannot write %s: %s; `regvisor reload` will not learn this outcome",
                            s->reload_status_path, strerror(-r));
        notify_reloaded(s, ok, message);
        if (ok)
                census_now(s); /* new keys or names change the verdicts */
        if (s->reload_again) {
                s->reload_again = false;
                reconf_start(s);
        }
}

/* Whether the pending reload pins another image than the running one. */
static bool reconf_new_image(const Supervisor *s) {
        return s->reload_prev.image && s->config.image && !streq(s->reload_prev.image, s->config.image);
}

/* The pending reload's configuration stays (commit) or goes (rollback). A
 * new image restarts the registry on it: the proxy holds pulls meanwhile
 * ([proxy] upstream_hold). */
static void reconf_commit(Supervisor *s) {
        bool upgrade = reconf_new_image(s);

        config_done(&s->reload_prev);
        if (upgrade)
                table_upgrade(s);
}

/* A new [registry] image must be in the unit provision wrote and in the
 * service user's storage (loaded from image_archive if need be) before
 * the registry is restarted on it: 0, or a refusal in *ret_refusal. */
static int reconf_check_image(Supervisor *s, char **ret_refusal) {
        _cleanup_free_ char *unit = NULL;
        int r;

        r = read_file(REGISTRY_UNIT_PATH, 1 << 20, &unit, NULL);
        if (r < 0 || !strstr(unit, s->config.image)) {
                if (asprintf(ret_refusal, "[registry] image %s is not in %s: run `regvisor provision` first",
                             s->config.image, REGISTRY_UNIT_PATH) < 0)
                        *ret_refusal = NULL;
                return r < 0 ? r : -ESTALE;
        }
        r = preflight_image(s);
        if (r < 0 && asprintf(ret_refusal, "[registry] image %s is not in %s's storage: run `regvisor provision` "
                                           "first",
                              s->config.image, s->config.service_user) < 0)
                *ret_refusal = NULL;
        return r;
}

static void reconf_rollback(Supervisor *s) {
        config_done(&s->config);
        s->config = s->reload_prev;
        s->reload_prev = (Config) {};
        certs_load(s);
        readiness_update_hosts(s);
}

static int on_reload_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        if (!s->reload_refusal)
                reconf_rollback(s);
        reconf_finish(s, false, "the proxy did not answer its reload in time; keeping the running configuration");
        return 0;
}

/* Parses and checks the file: 0 with *ret_fresh, or a negative errno with
 * *ret_refusal saying why the running configuration stays. */
static int reconf_check(Supervisor *s, Config *ret_fresh, char **ret_refusal) {
        return reload_check_file(s->config_path, &s->config, RELOAD_SUPERVISOR | RELOAD_PROXY,
                                 "`systemctl restart regvisor`", ret_fresh, ret_refusal);
}

void reconf_start(Supervisor *s) {
        _cleanup_free_ char *msg = NULL;
        Config fresh;

        if (s->reload_pending) {
                s->reload_again = true;
                return;
        }
        notify_reloading(s);
        /* regvisor gc's window: its reloads open and close it. */
        maintenance_sync(s, true);
        s->reload_seq++;
        free(TAKE_PTR(s->reload_refusal));
        if (reconf_check(s, &fresh, &s->reload_refusal) < 0) {
                /* The configuration stays; the proxy still loads the
                 * certificates and the CRL again (it refuses the file by
                 * itself): a revocation does not wait for the fix. */
                if (!s->reload_refusal)
                        s->reload_refusal = strdup("the configuration does not load");
        } else {
                s->reload_prev = s->config;
                s->config = fresh;
                if (reconf_new_image(s) && reconf_check_image(s, &s->reload_refusal) < 0) {
                        if (!s->reload_refusal)
                                s->reload_refusal = strdup("the new [registry] image is not ready");
                        reconf_rollback(s);
                }
                certs_load(s);
                readiness_update_hosts(s);
        }
        renew_before_reload(s);
        if (s->proxy.pid <= 0) {
                /* It reads the file when it starts again. */
                if (s->reload_refusal) {
                        if (asprintf(&msg, "%s; keeping the running configuration", s->reload_refusal) < 0)
                                msg = NULL;
                        reconf_finish(s, false, msg ? msg : s->reload_refusal);
                        return;
                }
                reconf_commit(s);
                reconf_finish(s, true, "configuration applied; the proxy, restarting, starts with it");
                return;
        }
        s->reload_pending = true;
        if (sd_event_add_time_relative(s->event, &s->reload_timer, CLOCK_MONOTONIC,
                                       RELOAD_PROXY_TIMEOUT_SEC * 1000000ULL, 0, on_reload_timeout, s) < 0)
                log_error("cannot arm the reload timer");
        proxy_child_signal(s, SIGHUP);
}

/* A line from the proxy parent: "ok MESSAGE" or "failed MESSAGE". */
static void on_proxy_report(Supervisor *s, char *line) {
        _cleanup_free_ char *msg = NULL;
        bool ok = strncmp(line, "ok ", 3) == 0;
        const char *text = line + (ok ? 3 : 7);
        int k;

        if (!ok && strncmp(line, "failed ", 7) != 0) {
                log_warning("proxy: unexpected report '%s'", line);
                return;
        }
        if (!s->reload_pending) {
                /* Late, after a timeout, or from a SIGHUP sent to it directly. */
                log_notice("proxy: a reload answer nobody waits for: %s", line);
                return;
        }
        if (s->reload_refusal) {
                /* Refused here already (the proxy says the same about the
                 * file): what counts from it is whether the certificates
                 * and the CRL are in. */
                if (strstr(text, "certificates and CRL reloaded"))
                        k = asprintf(&msg, "%s; keeping the running configuration (certificates and CRL "
                                     "reloaded)", s->reload_refusal);
                else
                        k = asprintf(&msg, "%s; keeping the running configuration; proxy: %s",
                                     s->reload_refusal, text);
                ok = false;
        } else {
                k = asprintf(&msg, "%s%s", ok ? "configuration applied; proxy: " : "proxy: ", text);
                if (ok)
                        reconf_commit(s);
                else
                        reconf_rollback(s);
        }
        reconf_finish(s, ok, k >= 0 ? msg : line);
}

static int on_report_readable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Supervisor *s = userdata;
        ssize_t n;
        char *nl;

        n = read(fd, s->report_buf + s->report_len, sizeof s->report_buf - 1 - s->report_len);
        if (n <= 0)
                return 0;
        s->report_len += (size_t) n;
        s->report_buf[s->report_len] = 0;
        while ((nl = strchr(s->report_buf, '\n'))) {
                *nl = 0;
                on_proxy_report(s, s->report_buf);
                s->report_len -= (size_t) (nl + 1 - s->report_buf);
                memmove(s->report_buf, nl + 1, s->report_len + 1);
        }
        if (s->report_len == sizeof s->report_buf - 1)
                s->report_len = 0; /* a line longer than any report: drop it */
        return 0;
}

void reconf_proxy_exited(Supervisor *s) {
        if (!s->reload_pending)
                return;
        /* Its successor reads the file at its start. */
        if (!s->reload_refusal)
                reconf_commit(s);
        reconf_finish(s, false, "the proxy exited during its reload; it restarts and reads the file again");
}

void reconf_setup(Supervisor *s) {
        bool ok;

        /* The proxy's reload outcomes. Non-blocking on both ends: a
         * supervisor that is gone must not hang the proxy parent. */
        if (pipe2(s->report_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
            sd_event_add_io(s->event, &s->report_source, s->report_pipe[0], EPOLLIN, on_report_readable, s) < 0)
                log_warning("cannot set up the proxy's report pipe: %m; reloads will time out waiting for it");
        /* Outcomes count on from the last run's: `regvisor reload` waits
         * for a SEQ other than the one it read. */
        if (reload_status_read(s->reload_status_path, &s->reload_seq, &ok, NULL) < 0)
                s->reload_seq = 0;
}

void reconf_done(Supervisor *s) {
        s->report_source = sd_event_source_disable_unref(s->report_source);
        s->reload_timer = sd_event_source_disable_unref(s->reload_timer);
        for (int i = 0; i < 2; i++)
                if (s->report_pipe[i] >= 0) {
                        (void) close(s->report_pipe[i]);
                        s->report_pipe[i] = -1;
                }
        config_done(&s->reload_prev);
        free(TAKE_PTR(s->reload_refused));
        free(TAKE_PTR(s->reload_refusal));
}
