/* SPDX-License-Identifier: MIT */
#pragma once

/* A real Distribution registry for a test file: Debian's docker-registry
 * 2.8 (the one the test hosts run), serving a scratch directory on a unix
 * socket or on loopback TCP. Started in a group setup, stopped in its
 * teardown; a machine without it skips the tests that need it, saying so. */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

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

/* Pushes a minimal OCI image to repository by digest (no tag), with curl as
 * a client would: the config blob "{}", no layers, an annotation note that
 * tells images apart. Its digest ("sha256:" and 64 hex) goes to ret. The
 * signature store takes signatures only for images the registry holds.
 * Returns 0 or -1. */
static inline int test_registry_push_image(const TestRegistry *t, const char *repository, const char *note,
                                           char ret[static 72]) {
        static const char config[] = "{}";
        char manifest[512], config_digest[65], path[TMPDIR_PATH_MAX + 16], cmd[2048];
        unsigned char md[32];
        int n;
        FILE *f;

        if (!SHA256((const unsigned char *) config, strlen(config), md))
                return -1;
        for (int i = 0; i < 32; i++)
                (void) sprintf(config_digest + 2 * i, "%02x", md[i]);
        n = snprintf(manifest, sizeof manifest,
                     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                     "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                     "\"digest\":\"sha256:%s\",\"size\":%zu},\"layers\":[],"
                     "\"annotations\":{\"org.regvisor.test.image\":\"%s\"}}",
                     config_digest, strlen(config), note);
        if (n < 0 || (size_t) n >= sizeof manifest || !SHA256((const unsigned char *) manifest, (size_t) n, md))
                return -1;
        strcpy(ret, "sha256:");
        for (int i = 0; i < 32; i++)
                (void) sprintf(ret + 7 + 2 * i, "%02x", md[i]);
        (void) snprintf(path, sizeof path, "%s/image-manifest", t->dir);
        f = fopen(path, "we");
        if (!f || fwrite(manifest, 1, (size_t) n, f) != (size_t) n || fclose(f) != 0)
                return -1;
        (void) snprintf(cmd, sizeof cmd,
                        "set -e; c='curl -sf %s%s'; r=http://%s/v2/%s;"
                        "loc=$($c -X POST -D - -o /dev/null $r/blobs/uploads/ | tr -d '\\r' |"
                        " sed -n 's/^[Ll]ocation: *//p');"
                        "printf '{}' | $c -X PUT -H 'Content-Type: application/octet-stream' --data-binary @-"
                        " \"$loc&digest=sha256:%s\" -o /dev/null;"
                        "$c -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json'"
                        " --data-binary @%s $r/manifests/%s -o /dev/null",
                        t->sock[0] ? "--unix-socket " : "", t->sock, t->sock[0] ? "localhost" : t->address,
                        repository, config_digest, path, ret);
        return system(cmd) == 0 ? 0 : -1;
}

static inline int test_registry_stop(TestRegistry *t) {
        if (t->pid <= 0)
                return 0;
        (void) kill(t->pid, SIGTERM);
        (void) waitpid(t->pid, NULL, 0);
        t->pid = 0;
        return tmpdir_remove(t->dir);
}
