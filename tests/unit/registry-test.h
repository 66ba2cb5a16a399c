/* SPDX-License-Identifier: MIT */
#pragma once

/* A real Distribution registry for a test file: Debian's docker-registry
 * 2.8 (the one the test hosts run), serving a scratch directory on a unix
 * socket or on loopback TCP. Started in a group setup, stopped in its
 * teardown; a machine without it skips the tests that need it, saying so. */

#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

#define DOCKER_REGISTRY "/usr/bin/docker-registry"

typedef struct TestRegistry {
        char dir[TMPDIR_PATH_MAX]; /* the scratch directory: config, storage, log, socket */
        char address[160]; /* as sigreg_init() takes it: "unix:PATH" or "127.0.0.1:PORT" */
        char sock[128];    /* the unix socket, "" for TCP */
        pid_t pid;         /* > 0 while running */
} TestRegistry;

/* Starts the registry on a unix socket in a new scratch directory (tcp_port
 * 0) or on 127.0.0.1:tcp_port, and waits (10 s at most) until it listens.
 * Returns 0 (also when docker-registry is not installed: then t->pid is 0)
 * or -1. */
static inline int test_registry_start(TestRegistry *t, unsigned tcp_port) {
        char config[TMPDIR_PATH_MAX + 16], log[TMPDIR_PATH_MAX + 16];
        FILE *f;

        *t = (TestRegistry){};
        if (access(DOCKER_REGISTRY, X_OK) < 0)
                return 0;
        if (tmpdir_make(t->dir, sizeof t->dir, "test-registry") < 0)
                return -1;
        (void) snprintf(config, sizeof config, "%s/config.yml", t->dir);
        (void) snprintf(log, sizeof log, "%s/registry.log", t->dir);
        if (tcp_port == 0) {
                (void) snprintf(t->sock, sizeof t->sock, "%s/registry.sock", t->dir);
                (void) snprintf(t->address, sizeof t->address, "unix:%s", t->sock);
        } else
                (void) snprintf(t->address, sizeof t->address, "127.0.0.1:%u", tcp_port);
        f = fopen(config, "we");
        if (!f)
                return -1;
        fprintf(f,
                "version: 0.1\nlog: {level: warn}\n"
                "storage: {filesystem: {rootdirectory: %s/data}}\n"
                "http: {net: %s, addr: %s, secret: test-registry}\n",
                t->dir, tcp_port ? "tcp" : "unix", tcp_port ? t->address : t->sock);
        if (fclose(f) != 0)
                return -1;
        t->pid = fork();
        if (t->pid < 0)
                return -1;
        if (t->pid == 0) {
                /* Not close-on-exec: they are the registry's stdout and stderr. Both appending:
                 * its access log (stdout, a line per request) is counted by tests, and stderr
                 * written at an offset of its own would overwrite it. */
                if (!freopen(log, "a", stderr) || !freopen(log, "a", stdout))
                        _exit(127);
                execl(DOCKER_REGISTRY, "docker-registry", "serve", config, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 200; i++) {
                char cmd[256];
                struct stat st;

                if (tcp_port == 0 && stat(t->sock, &st) == 0 && S_ISSOCK(st.st_mode))
                        return 0;
                (void) snprintf(cmd, sizeof cmd, "curl -sf -o /dev/null -m 1 http://%s/v2/", t->address);
                if (tcp_port != 0 && system(cmd) == 0)
                        return 0;
                (void) nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        }
        fprintf(stderr, "docker-registry did not listen on %s within 10 s\n", t->address);
        return -1;
}

static inline int test_registry_stop(TestRegistry *t) {
        if (t->pid <= 0)
                return 0;
        (void) kill(t->pid, SIGTERM);
        (void) waitpid(t->pid, NULL, 0);
        t->pid = 0;
        return tmpdir_remove(t->dir);
}
