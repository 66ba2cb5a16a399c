/* SPDX-License-Identifier: MIT */
/*
 * What `regvisor run` renews by itself: the server certificate (same key,
 * names and CRL distribution point) and both CRLs, [pki] renew_before their
 * end, looked at every [pki] check_interval. When the CRL's nextUpdate
 * passes OpenSSL refuses every client certificate (every push fails), and
 * when the server certificate ends every client refuses the proxy: neither
 * must wait for an operator. The files are written as provision writes them
 * (supervisor/provision/provision-pki.c, under the tree's flock, so a
 * concurrent `pki revoke` loses nothing), then the proxy reloads through
 * the SIGHUP path (reconfigure.c): new workers with the new files, the old
 * ones drain their connections.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "provision.h"
#include "supervisor.h"

/* Renews what is due; with reload, a renewal reloads the proxy. A failure
 * is logged when it differs from the last one (each check_interval would
 * repeat it) and again when it is gone. */
static void renew_check(Supervisor *s, bool reload) {
        _cleanup_free_ char *detail = NULL;
        Provision p = {.config = &s->config};
        int r;

        r = pki_files_renew_due(&p, time(NULL), &detail);
        provision_done(&p);
        if (r < 0) {
                const char *why = detail ?: strerror(-r);
                if (!s->renew_error || !streq(s->renew_error, why))
                        log_event(LOG_ERR, "pki-renew-failed",
                                  "cannot renew the certificate tree: %s; retrying every %us", why,
                                  s->config.pki_check_interval);
                free(s->renew_error);
                s->renew_error = strdup(why);
                return;
        }
        if (s->renew_error) {
                log_info("the certificate tree can be renewed again");
                free(TAKE_PTR(s->renew_error));
        }
        if (r == 0)
                return;
        s->renewals += (unsigned) r;
        log_event(LOG_NOTICE, "pki-renewed", "renewed %s%s", detail ?: "the certificate tree",
                  reload && s->proxy.pid > 0 ? "; reloading the proxy" : "");
        if (reload && s->proxy.pid > 0)
                reconf_start(s);
        else
                certs_load(s);
}

void renew_before_reload(Supervisor *s) {
        renew_check(s, false);
}

static int on_renew_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        renew_check(s, true);
        /* The interval of the configuration in force now (a reload may
         * have changed it). */
        if (sd_event_source_set_time_relative(src, s->config.pki_check_interval * USEC_PER_SEC) < 0 ||
            sd_event_source_set_enabled(src, SD_EVENT_ONESHOT) < 0)
                log_error("cannot re-arm the renewal timer: nothing is renewed until regvisor restarts");
        return 0;
}

void renew_setup(Supervisor *s) {
        /* Before the proxy starts: it loads what this writes. */
        renew_check(s, false);
        if (sd_event_add_time_relative(s->event, &s->renew_timer, CLOCK_MONOTONIC,
                                       s->config.pki_check_interval * USEC_PER_SEC, USEC_PER_SEC / 10,
                                       on_renew_timer, s) < 0)
                log_error("cannot arm the renewal timer: the server certificate and the CRLs are not renewed");
}

void renew_done(Supervisor *s) {
        s->renew_timer = sd_event_source_disable_unref(s->renew_timer);
        free(TAKE_PTR(s->renew_error));
}
