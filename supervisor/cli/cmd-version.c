/* SPDX-License-Identifier: MIT */
#include <openssl/opensslv.h>
#include <stdio.h>

#include "log.h"
#include "macro.h"
#include "verbs.h"

static void help(void) {
        printf("Usage: regvisor version\n\n"
               "Print regvisor's version and the OpenSSL it was built with.\n\n"
               "  -h --help  this help\n");
}

/* No options but --help, no arguments: too small for getopt. */
int verb_version(int argc, char **argv) {
        if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                help();
                return 0;
        }
        if (argc > 1) {
                log_error("version: unexpected argument '%s' (it takes none); see 'regvisor version --help'", argv[1]);
                return 2;
        }
        printf("regvisor %s (%s)\n", REGVISOR_VERSION, OPENSSL_VERSION_TEXT);
        return 0;
}
