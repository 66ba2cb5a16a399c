/* SPDX-License-Identifier: MIT */
/*
 * The TLS proxy as a child of `regvisor run`: `regvisor proxy --config PATH`
 * fork+exec'd (a fresh image: no bus connections or loop state inherited),
 * restarted with its own backoff (1 s doubling to 30 s) when it exits, and
 * signalled for reloads (SIGHUP) and the stop (SIGTERM, SIGKILL past its
 * share of the stop budget).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "paths.h"
#include "macro.h"
#include "proxy.h"
#include "supervisor.h"


void proxy_child_signal(Supervisor *s, int sig) {
        if (s->proxy.pid > 0)
                (void) kill(s->proxy.pid, sig);
}

static int on_proxy_restart_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        s->proxy.restart_timer = sd_event_source_disable_unref(s->proxy.restart_timer);
        s->proxy_restarts++;
        (void) proxy_child_spawn(s);
        return 0;
}

static int on_proxy_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Supervisor *s = userdata;

        child_reaped(&s->proxy);
        reconf_proxy_exited(s);
        if (s->state == SUP_STOPPING) {
                log_event(LOG_INFO, "proxy-stopped", "proxy stopped");
                table_proxy_stopped(s);
                return 0;
        }
        child_exited(s, &s->proxy, "proxy-exited", "proxy", si, on_proxy_restart_timer);
        return 0;
}

/* In the child: the listening sockets the supervisor got from
 * regvisor.socket, passed on by the same protocol (they stay at
 * SD_LISTEN_FDS_START..., LISTEN_PID is the child, which exec keeps). */
static void pass_listen_fds(const Supervisor *s) {
        char n[16], pid[16];

        if (s->n_listen_fds <= 0)
                return;
        for (int i = 0; i < s->n_listen_fds; i++) {
                int fd = SD_LISTEN_FDS_START + i, fl = fcntl(fd, F_GETFD);
                if (fl >= 0)
                        (void) fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
        }
        (void) snprintf(n, sizeof n, "%d", s->n_listen_fds);
        (void) snprintf(pid, sizeof pid, "%d", (int) getpid());
        (void) setenv("LISTEN_FDS", n, 1);
        (void) setenv("LISTEN_PID", pid, 1);
}

/* In the child, before exec: fd (when open) handed on under env, as a copy
 * without O_CLOEXEC (dup() clears it). */
static void pass_fd(int fd, const char *env) {
        char n[16];

        if (fd < 0)
                return;
        fd = dup(fd);
        (void) snprintf(n, sizeof n, "%d", fd);
        if (fd >= 0)
                (void) setenv(env, n, 1);
}

/* `regvisor proxy` as a fresh process (exec of ourselves): it inherits
 * nothing of this loop or its bus connections, binds the ports while it
 * still has CAP_NET_BIND_SERVICE, and drops to the proxy user in its
 * workers. */
int proxy_child_spawn(Supervisor *s) {
        pid_t pid = child_fork("proxy");

        if (pid < 0)
                return pid;
        if (pid == 0) {
                char *argv[] = {(char *) "regvisor", (char *) "proxy", (char *) "--config",
                                (char *) s->config_path, (char *) "--sigstore", (char *) SIGSTORE_SOCKET_PATH,
                                NULL};
                /* The counters' memfd and the write end of the report pipe. */
                pass_fd(s->metrics_fd, PROXY_METRICS_FD_ENV);
                pass_fd(s->report_pipe[1], PROXY_REPORT_FD_ENV);
                pass_listen_fds(s);
                execv("/proc/self/exe", argv);
                _exit(127);
        }
        return child_watch(s, &s->proxy, pid, "proxy", "proxy-start", on_proxy_exit);
}

void proxy_child_end(Supervisor *s) {
        child_end(&s->proxy);
}
