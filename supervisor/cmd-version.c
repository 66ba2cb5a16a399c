/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <openssl/opensslv.h>
#include <stdio.h>

#include "verbs.h"

static void help(void) {
        printf("Usage: regvisor version\n\n"
               "Print regvisor's version and the OpenSSL it was built with.\n\n"
               "  -h --help  this help\n");
}

/* <0 error, 0 exit successfully (help), 1 continue */
static int parse_argv(int argc, char **argv) {
        static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {}};
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (verb_no_arguments("version", argc, argv) < 0)
                return -EINVAL;
        return 1;
}

int verb_version(int argc, char **argv) {
        int r = parse_argv(argc, argv);

        if (r <= 0)
                return r < 0 ? 2 : 0;
        printf("regvisor %s (%s)\n", REGVISOR_VERSION, OPENSSL_VERSION_TEXT);
        return 0;
}
