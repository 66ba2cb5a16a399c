/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Inside `regvisor run`: the state every file of supervisor/run/ shares, and
 * what each file offers the others. One job per file:
 *
 *   supervise.c     supervisor_run(): start-up in order, the loop, teardown
 *   table.c         the state x event table and its actions (the cells)
 *   unit.c          the registry's user unit over D-Bus: jobs and signals
 *   preflight.c     before supervising: the user manager, the pinned image
 *   readiness.c     the registry probe and the proxy port checks as events
 *   proxy-child.c   `regvisor proxy` as a child: spawn, restart, signals
 *   sigstore-child.c  `regvisor sigstore` as a child: spawn, restart, stop
 *   child.c         what both children share: the fork, the restart delay
 *   census.c        the signed-image census for /metrics, as a child
 *   reconfigure.c   SIGHUP: the all-or-nothing reload and its outcome
 *   notify.c        sd_notify: READY, STOPPING, RELOADING and STATUS
 *   pages.c, certs.c  what /livez, /readyz and /metrics answer
 *   renew.c         the server certificate and the CRLs renewed in time
 *
 * Not a public interface: supervise.h is. Unit tests include this header to
 * drive the table (tests/unit/test-supervise.c).
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "config.h"
#include "macro.h"
#include "metrics.h"
#include "probe.h"
#include "status.h"
#include "supervise.h"

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define MAX_FAILURES 1000

/* A child process the supervisor restarts (child.c): the proxy, the signature store. */
typedef struct ChildProc {
        pid_t pid;                       /* 0: not running */
        sd_event_source *source;         /* the watch of its exit */
        sd_event_source *restart_timer;  /* armed after an exit, until the restart */
        unsigned attempt;                /* exits since it last ran healthy, for the backoff */
        uint64_t started;                /* CLOCK_MONOTONIC usec of the last start */
} ChildProc;

typedef struct Supervisor {
        const char *config_path;
        const char *reload_status_path; /* RELOAD_STATUS_PATH; a test's own file */
        Config config;
        uid_t uid; /* the service user's */
        gid_t gid; /* its primary group: reads the storage and the signature store */

        sd_event *event;
        sd_bus *system_bus;
        sd_bus *user_bus;
        char *unit_path;

        SupervisorState state;
        char *job;       /* the job we wait for */
        char *early_job; /* a JobRemoved that beat its method reply */
        char *early_result;
        sd_bus_slot *job_call;

        sd_event_source *probe_timer;
        Probe *probe;
        uint64_t probing_since; /* CLOCK_MONOTONIC usec */
        uint64_t last_probe_ok;

        sd_event_source *backoff_timer;
        sd_event_source *stop_timer;     /* the proxy's drain, then the StopUnit job */
        uint64_t failures[MAX_FAILURES]; /* when each recent failure happened */
        unsigned n_failures;
        unsigned attempt; /* consecutive failures: the backoff exponent */
        uint64_t healthy_since;
        unsigned restarts;
        bool ready_sent;
        char *last_failure;
        int exit_status;

        StatusServer *status_server;

        /* The TLS proxy: `regvisor proxy` as a child process. */
        ChildProc proxy;
        unsigned proxy_restarts;
        /* The signature store: `regvisor sigstore` as a child process. */
        ChildProc sigstore;
        bool proxy_listening;        /* both ports accepted a connection lately */
        int metrics_fd;              /* the proxy's counters (memfd), -1 if none */
        int n_listen_fds;            /* regvisor.socket's, SD_LISTEN_FDS_START on; handed to each proxy */
        const ProxyMetrics *metrics; /* mapped read-only */
        Probe *port_probe[2];
        bool port_ok[2];
        struct {
                char *name;
                time_t not_after;
        } certs[64];
        size_t n_certs;
        uint64_t backoff_delay_ms; /* current delay while in backoff */
        time_t last_probe_ok_wall;

        /* Reloads (SIGHUP): see reload.h for the outcome file. */
        int report_pipe[2]; /* the proxy's reload outcomes, one line each */
        sd_event_source *report_source;
        char report_buf[2048];
        size_t report_len;
        unsigned long reload_seq; /* reloads processed; the outcome file's SEQ */
        bool reload_pending;      /* SIGHUP sent to the proxy, its answer not yet in */
        bool reload_again;        /* another SIGHUP came meanwhile */
        Config reload_prev;       /* the configuration before the pending reload */
        sd_event_source *reload_timer;
        char *reload_refused;                 /* the last reload's error, NULL when it applied */
        char *reload_refusal;                 /* the pending reload's: the file was refused here */
        char probe_host[2][INET6_ADDRSTRLEN]; /* where the proxy ports are checked */

        /* regvisor gc's window (maintenance.c) */
        int maintenance;        /* the MaintenanceMode last seen */
        bool registry_readonly; /* the read-only variable is set in the user manager */
        bool registry_restart;  /* at start: restart, not start (maintenance_start()) */

        /* The signed-image census (census.c) and its last counts. */
        sd_event_source *census_timer, *census_io, *census_child, *census_kill_timer;
        pid_t census_pid;
        int census_fd;
        char census_buf[4096];
        size_t census_len;
        unsigned long long census_tags, census_signed, census_unsigned;
        time_t census_wall; /* 0: not counted yet */

        /* Renewal of the server certificate and the CRLs (renew.c). */
        sd_event_source *renew_timer;
        char *renew_error; /* the last failure, logged once */
        unsigned renewals; /* files renewed since start */
} Supervisor;

static inline uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000ULL;
}

/* supervise.c: releases everything s holds (a running proxy is stopped
 * and reaped), the configuration included. */
void supervisor_done(Supervisor *s);

/* table.c: runs the cell of (s->state, ev); reason says why, for the
 * journal (NULL: nothing to add). Every event goes through here. */
void table_dispatch(Supervisor *s, SupervisorEvent ev, const char *reason);
/* Enters SUP_STARTING and sends StartUnit. */
void table_start(Supervisor *s);
/* A planned restart (regvisor gc's read-only window): RestartUnit, then
 * SUP_STARTING as after any start; no failure is counted. */
void table_restart(Supervisor *s);
/* A reload pinned a new image: the registry's unit restarted (one
 * RestartUnit job), then ready again through the table as at its start. */
void table_upgrade(Supervisor *s);
/* The proxy has exited while stopping: now the registry's StopUnit. */
void table_proxy_stopped(Supervisor *s);

/* unit.c: StartUnit or StopUnit, asynchronously; the job's end arrives as
 * SUP_EV_JOB_DONE or SUP_EV_JOB_FAILED. 0, or a negative errno (logged). */
int unit_queue_job(Supervisor *s, const char *method);
/* ResetFailedUnit: clears systemd's own start rate limit. */
void unit_reset_failed(Supervisor *s);
/* Attaches the user bus, subscribes, loads the unit and watches its jobs
 * and properties (SUP_EV_UNIT_DOWN). 0 or a negative errno (logged). */
int unit_watch(Supervisor *s);

/* preflight.c: the service user's manager is running and reachable
 * (s->user_bus), and its storage has the pinned image. 0 or a negative
 * errno (logged). */
int preflight_user_manager(Supervisor *s);
int preflight_image(Supervisor *s);

/* readiness.c: probes from now + delay_usec on, every probe_interval while
 * starting, waiting or running (SUP_EV_PROBE_OK, SUP_EV_UNHEALTHY). */
void readiness_schedule(Supervisor *s, uint64_t delay_usec);
void readiness_stop(Supervisor *s);
/* Where the proxy ports are checked, from the current configuration. */
void readiness_update_hosts(Supervisor *s);

/* proxy-child.c */
int proxy_child_spawn(Supervisor *s);
void proxy_child_signal(Supervisor *s, int sig);
/* On the way out of an error path: SIGTERM and reap it. */
void proxy_child_end(Supervisor *s);

/* child.c: fork() for a child that execs this binary: in the child (0
 * returned) the signal mask is cleared, NOTIFY_SOCKET and the watchdog's
 * variables are gone and PDEATHSIG is SIGTERM. The pid, or a negative
 * errno (logged: "cannot fork the WHAT"). */
pid_t child_fork(const char *what);
/* The parent's side of a fork: records pid and its start time in c,
 * watches its exit (on_exit) and logs event. 0, or a negative errno
 * (logged). */
int child_watch(Supervisor *s, ChildProc *c, pid_t pid, const char *what, const char *event,
                sd_event_child_handler_t on_exit);
/* First thing in on_exit: c's pid and watch are gone. */
void child_reaped(ChildProc *c);
/* A child (what: "proxy") exited outside the stop: logs event with how,
 * and arms c's restart timer (on_timer): 1 s doubling to 30 s, attempt
 * reset after 60 s of health since it started. */
void child_exited(Supervisor *s, ChildProc *c, const char *event, const char *what, const siginfo_t *si,
                  sd_event_time_handler_t on_timer);
/* No restart; SIGTERM to a running child. */
void child_stop(ChildProc *c);
/* child_stop(), then waits for it: nothing of c is left. */
void child_end(ChildProc *c);

/* sigstore-child.c: started before the proxy; stopped (SIGTERM, no
 * restart) once the proxy has drained; end: stopped and reaped. */
int sigstore_child_spawn(Supervisor *s);
void sigstore_child_stop(Supervisor *s);
void sigstore_child_end(Supervisor *s);

/* census.c: the signed-image census as a child of health: 15 s after
 * start, then every 10 minutes (census_start), at once after a reload
 * (census_now); end: the child killed and reaped. */
void census_start(Supervisor *s);
void census_now(Supervisor *s);
void census_end(Supervisor *s);

/* reconfigure.c: the report pipe and the last outcome's SEQ. Failing to
 * set up is a warning: reloads then time out. */
void reconf_setup(Supervisor *s);
/* SIGHUP: a reload, or a note to run another when one is pending. */
void reconf_start(Supervisor *s);
/* The proxy exited: a pending reload ends as refused. */
void reconf_proxy_exited(Supervisor *s);
void reconf_done(Supervisor *s);

/* maintenance.c: at start, the read-only variable as a live gc wants it
 * (unset otherwise); 1 when that changes what a running registry has (it
 * must be restarted, not just started), 0 when not, or a negative errno
 * (logged). */
int maintenance_start(Supervisor *s);
/* Follows regvisor gc's state: a planned restart when read-only changes;
 * outside a reload, a gc gone without reopening makes a reload. */
void maintenance_sync(Supervisor *s, bool reloading);

/* notify.c */
void notify_status(Supervisor *s, const char *fmt, ...) _printf_(2, 3);
/* READY=1 once the registry answers and both proxy ports accept; STATUS
 * says how things are. Does nothing outside SUP_RUNNING. */
void notify_maybe_ready(Supervisor *s);
void notify_stopping(Supervisor *s);
void notify_reloading(Supervisor *s);
/* A reload ended: READY=1 again and its outcome in STATUS. */
void notify_reloaded(Supervisor *s, bool ok, const char *message);

/* certs.c: the expiry of every certificate in the tree, for /metrics. */
void certs_load(Supervisor *s);
void certs_clear(Supervisor *s);

/* renew.c: renews what is due now (before the proxy starts), then every
 * [pki] check_interval, reloading the proxy after a renewal. */
void renew_setup(Supervisor *s);
void renew_done(Supervisor *s);
/* A reload is about to tell the proxy: renew what the new configuration
 * makes due now, so that one reload carries both. The proxy keeps one
 * draining generation; a second reload right after the first would end the
 * connections of the oldest. */
void renew_before_reload(Supervisor *s);

/* pages.c: a StatusRender for status_server_new(), userdata a Supervisor. */
int pages_render(StatusEndpoint which, FILE *out, void *userdata);
