/* SPDX-License-Identifier: MIT */
/*
 * `regvisor gc`: the window, in order (gc.h):
 *
 *   take      the maintenance lock (common/config/maintenance.h): one gc
 *   close     state "closed", reload regvisor.service: the proxy answers
 *             every write on the push port 503 + Retry-After
 *   drain     pushes in flight finish: the previous proxy workers drain
 *             (regvisor_proxy_workers_alive back down), within drain_timeout
 *   readonly  state "readonly", reload: the supervisor restarts the registry
 *             with storage.maintenance.readonly (pulls go on); wait until
 *             /v2/ answers and a write is 405
 *   dry run   refuse to go on when it would delete more than max_delete_share
 *   collect   garbage-collect (never --delete-untagged), stale uploads purged
 *   restore   ALWAYS, on every path after take: state removed, reload, wait
 *             until the registry takes writes again (pushes reopen with it)
 *   verify    every blob of every tagged manifest answers HEAD
 *
 * A gc that dies anywhere holds no lock any more: the supervisor restores
 * read-write and pushes by itself (supervisor/run/maintenance.c).
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "gc.h"
#include "log.h"
#include "macro.h"
#include "maintenance.h"
#include "paths.h"

#define RELOAD_TIMEOUT_USEC (60 * 1000000ULL)
/* The registry restarts (stop: podman's -t 10, then start) within this. */
#define RESTART_TIMEOUT_USEC (180 * 1000000ULL)
#define VERIFY_TIMEOUT_USEC (1800 * 1000000ULL)
#define POLL_USEC 500000

typedef struct Gc {
        const Config *c;
        PodmanUser u;
        HealthEndpoint registry;
        sd_bus *bus;
        int lock_fd;
        GcStatus st;
} Gc;

/* Test hooks (tests/integration/78-gc.sh): at the named point, stop
 * (REGVISOR_TEST_GC_STOP, continued with SIGCONT) so a test can push and
 * pull inside the window, or die (REGVISOR_TEST_GC_KILL) as a crash would. */
static void test_point(const char *point) {
        const char *stop = getenv("REGVISOR_TEST_GC_STOP"), *kill = getenv("REGVISOR_TEST_GC_KILL");

        if (stop && streq(stop, point))
                (void) raise(SIGSTOP);
        if (kill && streq(kill, point))
                (void) raise(SIGKILL);
}

static int reload(Gc *g, const char *why) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = bus_reload_unit(g->bus, REGVISOR_UNIT_NAME, RELOAD_TIMEOUT_USEC, &error);
        if (r < 0)
                return log_error_errno(r, "gc: reload of %s (%s) failed: %s", REGVISOR_UNIT_NAME, why,
                                       error ?: strerror(-r));
        return 0;
}

/* The registry's answer to a write it can never accept (an empty manifest
 * PUT): 405 read-only, 400 read-write; nothing is written either way. */
static int registry_mode(Gc *g, uint64_t deadline, bool *ret_readonly) {
        int status = 0, r;

        r = health_http_status(&g->registry, "GET", "/v2/", "localhost", deadline, &status);
        if (r < 0 || status != 200)
                return r < 0 ? r : -EAGAIN;
        r = health_http_status(&g->registry, "PUT", "/v2/regvisor-gc-probe/manifests/probe", "localhost", deadline,
                               &status);
        if (r < 0)
                return r;
        *ret_readonly = status == 405;
        return 0;
}

static int wait_registry(Gc *g, bool readonly) {
        uint64_t deadline = health_now_usec() + RESTART_TIMEOUT_USEC;
        int r = -ETIMEDOUT;

        while (health_now_usec() < deadline) {
                bool ro = false;
                r = registry_mode(g, health_now_usec() + 5 * 1000000ULL, &ro);
                if (r >= 0 && ro == readonly)
                        return 0;
                (void) usleep(POLL_USEC);
        }
        return log_error_errno(r < 0 ? r : -ETIMEDOUT, "gc: the registry did not come back %s within %llu s",
                               readonly ? "read-only" : "read-write",
                               (unsigned long long) (RESTART_TIMEOUT_USEC / 1000000ULL));
}

/* regvisor_proxy_workers_alive from the supervisor's /metrics, or < 0. */
static int64_t workers_alive(const Gc *g) {
        static const char name[] = "\nregvisor_proxy_workers_alive ";
        const ListenAddress *l = &g->c->status_listen;
        HealthEndpoint ep = {.host = l->host && !streq(l->host, "::") && !streq(l->host, "0.0.0.0") ? l->host
                                                                                                    : "127.0.0.1",
                             .port = l->port};
        _cleanup_free_ char *body = NULL;
        long long n;
        size_t len;
        int status = 0, r;
        char *p;

        r = health_http_fetch(&ep, "GET", "/metrics", NULL, health_now_usec() + 5 * 1000000ULL, 4u << 20, &status,
                              &body, &len);
        if (r < 0 || status != 200)
                return r < 0 ? r : -EIO;
        p = strstr(body, name);
        if (!p || sscanf(p + strlen(name), "%lld", &n) != 1)
                return -ENOMSG;
        return n;
}

/* Pushes in flight finish on the workers the reload retired: they drain
 * (up to PROXY_DRAIN_SECONDS), then exit; wait for that, within
 * drain_timeout. */
static void drain(Gc *g, int64_t before) {
        uint64_t deadline = health_now_usec() + (uint64_t) g->c->gc_drain_timeout * 1000000ULL;
        int64_t n = -1;

        if (before < 0) {
                log_warning("gc: cannot read the proxy's workers from /metrics; waiting drain_timeout (%u s) for "
                            "pushes in flight",
                            g->c->gc_drain_timeout);
                (void) usleep((useconds_t) g->c->gc_drain_timeout * 1000000U);
                return;
        }
        while (health_now_usec() < deadline) {
                n = workers_alive(g);
                if (n >= 0 && n <= before)
                        return;
                (void) usleep(POLL_USEC);
        }
        log_warning("gc: pushes still in flight after drain_timeout (%u s): they are cut off", g->c->gc_drain_timeout);
}

/* Everything between closing and restoring: the first failure ends it. */
static int window(Gc *g) {
        GcSummary dry = {}, done = {};
        _cleanup_free_ char *error = NULL;
        int64_t before, after, alive;
        unsigned share;
        int r;

        alive = workers_alive(g);
        r = reload(g, "refusing pushes");
        if (r < 0)
                return r;
        log_event(LOG_NOTICE, "gc-window", "gc: pushes refused (503, Retry-After: %d); letting pushes in flight finish",
                  MAINTENANCE_RETRY_AFTER);
        drain(g, alive);

        r = maintenance_set(g->lock_fd, MAINTENANCE_READONLY);
        if (r >= 0)
                r = reload(g, "registry read-only");
        if (r >= 0)
                r = wait_registry(g, true);
        if (r < 0)
                return r;
        log_event(LOG_NOTICE, "gc-window", "gc: the registry runs read-only; pulls go on");
        test_point("readonly");

        before = gc_storage_bytes(&g->u, g->c->storage);
        r = gc_collect(&g->u, true, &dry, &error);
        if (r < 0)
                return log_error_errno(r, "gc: %s", error ?: strerror(-r));
        share = gc_delete_share(&dry);
        log_info("gc: dry run: %llu blobs marked, %llu eligible for deletion (%u%%, max_delete_share %u%%)",
                 dry.marked, dry.blobs_eligible, share, g->c->gc_max_delete_share_pct);
        if (share > g->c->gc_max_delete_share_pct)
                return log_error_errno(-ECANCELED, "gc: refusing: the dry run would delete %u%% of the blobs (%llu of "
                                              "%llu), more than [gc] max_delete_share = %u%%; nothing was deleted",
                                       share, dry.blobs_eligible, dry.marked + dry.blobs_eligible,
                                       g->c->gc_max_delete_share_pct);
        if (dry.blobs_eligible > 0) {
                r = gc_collect(&g->u, false, &done, &error);
                if (r < 0)
                        return log_error_errno(r, "gc: %s", error ?: strerror(-r));
                g->st.blobs_deleted = done.blobs_eligible;
        }
        r = gc_purge_uploads(&g->u, g->c->storage, g->c->gc_upload_max_age, &error);
        if (r < 0)
                return log_error_errno(r, "gc: %s", error ?: strerror(-r));
        g->st.uploads_purged = (unsigned) r;
        after = gc_storage_bytes(&g->u, g->c->storage);
        if (before >= 0 && after >= 0 && after < before)
                g->st.bytes_freed = (unsigned long long) (before - after);
        return 0;
}

/* The one way out of the window, on every path. */
static int restore(Gc *g) {
        int r;

        maintenance_release(MAINTENANCE_PATH, TAKE_FD(g->lock_fd));
        r = reload(g, "pushes reopened, registry read-write");
        if (r < 0) {
                /* The lock is gone: the supervisor restores by itself on its
                 * next healthy probe (maintenance.c). */
                log_warning("gc: the supervisor restores read-write and pushes on its own once it notices");
        }
        r = wait_registry(g, false);
        if (r < 0)
                return r;
        log_event(LOG_NOTICE, "gc-window", "gc: pushes reopened; the registry runs read-write");
        return 0;
}

static int open_gc(Gc *g, const Config *c) {
        _cleanup_free_ char *state = NULL, *error = NULL;
        struct passwd *pw;
        int r;

        *g = (Gc) {.c = c, .lock_fd = -EBADF};
        pw = getpwnam(c->service_user);
        if (!pw)
                return log_error_errno(-ESRCH, "gc: no user %s ([host] service_user)", c->service_user);
        g->u = (PodmanUser) {.user = c->service_user, .uid = pw->pw_uid, .gid = pw->pw_gid, .home = pw->pw_dir};
        if (c->listen.kind == LISTEN_UNIX)
                g->registry = (HealthEndpoint) {.path = c->listen.path};
        else
                g->registry = (HealthEndpoint) {.host = c->listen.host, .port = c->listen.port};
        r = bus_open_system(&g->bus);
        if (r >= 0)
                r = bus_get_unit_active_state(g->bus, REGVISOR_UNIT_NAME, &state, &error);
        if (r < 0)
                return log_error_errno(r, "gc: cannot read the state of %s: %s", REGVISOR_UNIT_NAME,
                                       error ?: strerror(-r));
        if (!streq(state, "active"))
                return log_error_errno(-ENOTCONN, "gc: %s is %s: gc runs its window through the running "
                                                  "supervisor",
                                       REGVISOR_UNIT_NAME, state);
        return 0;
}

static void close_gc(Gc *g) {
        if (g->lock_fd >= 0)
                maintenance_release(MAINTENANCE_PATH, TAKE_FD(g->lock_fd));
        g->bus = sd_bus_unref(g->bus);
}

static int dry_run_only(Gc *g) {
        _cleanup_free_ char *error = NULL;
        GcSummary dry = {};
        int r;

        r = gc_collect(&g->u, true, &dry, &error);
        if (r < 0)
                return log_error_errno(r, "gc: %s", error ?: strerror(-r));
        printf("dry run (registry read-write, pushes open): %llu blobs marked, %llu would be deleted (%u%%, "
               "max_delete_share %u%%)\n",
               dry.marked, dry.blobs_eligible, gc_delete_share(&dry), g->c->gc_max_delete_share_pct);
        return 0;
}

int gc_run(const Config *c, const GcOptions *o) {
        _cleanup_(close_gc) Gc g = {.lock_fd = -EBADF};
        uint64_t t0 = health_now_usec();
        GcVerify v = {};
        int r, k;

        /* The window closes pushes on this host only: another host of the
         * store could reference a blob in the moment it is deleted. */
        if (config_storage_is_shared(c))
                return log_error_errno(-EOPNOTSUPP,
                                       "gc: [registry] storage is shared by several hosts: a gc on one host "
                                       "could delete a blob another host's push is about to reference, so it "
                                       "is refused. Put every host read-only first (take the push port out of "
                                       "the balancer, or stop regvisor.socket and regvisor.service on every "
                                       "host but one), then collect from that one (INSTALL.md, \"Several "
                                       "hosts\", garbage collection)");

        r = open_gc(&g, c);
        if (r < 0)
                return r;
        if (o->dry_run)
                return dry_run_only(&g);
        r = maintenance_take(MAINTENANCE_PATH);
        if (r == -EBUSY)
                return log_error_errno(r, "gc: another regvisor gc holds %s", MAINTENANCE_PATH);
        if (r < 0)
                return log_error_errno(r, "gc: cannot take %s: %s", MAINTENANCE_PATH, strerror(-r));
        g.lock_fd = r;

        r = window(&g);
        k = restore(&g);
        if (r >= 0)
                r = k;
        if (r >= 0) {
                r = gc_verify(&g.registry, health_now_usec() + VERIFY_TIMEOUT_USEC, &v);
                if (r >= 0 && v.missing > 0)
                        r = log_error_errno(-EIO, "gc: %u referenced blobs or manifests do not answer", v.missing);
        }
        g.st.finished = (unsigned long long) time(NULL);
        g.st.success = r >= 0;
        g.st.seconds = (health_now_usec() - t0) / 1000000ULL;
        k = gc_status_write(GC_STATUS_PATH, &g.st);
        if (k < 0)
                log_warning("gc: cannot write %s: %s", GC_STATUS_PATH, strerror(-k));
        if (r < 0) {
                log_event(LOG_ERR, "gc-failed", "gc: failed (%s); pushes are open, the registry read-write",
                          strerror(-r));
                return r;
        }
        log_event(LOG_NOTICE, "gc-done",
                  "gc: freed %llu bytes: %llu blobs deleted, %llu stale upload sessions purged; verified %u "
                  "manifests and %u blobs in %u repositories",
                  g.st.bytes_freed, g.st.blobs_deleted, g.st.uploads_purged, v.manifests, v.blobs, v.repositories);
        return 0;
}
