# regvisor: a plain GNU Makefile with pkg-config.
#
#   make            build ./build/regvisor
#   make check      unit tests under ASan/UBSan, then integration tests on a
#                   throwaway systemd test host (needs root, see README)
#   make unit       unit tests only (T=config: only tests/unit/test-config.c)
#   make fuzz       run the fuzzers for longer (fuzz-smoke: a few seconds each)
#   make demo       boot the test host and bring the whole stack up inside it
#   make bench      regvisor's proxy against nginx and the bare registry -> BENCHMARKS.md
#                   (as root; packages: scripts/deps --bench; knobs: scripts/bench's head)
#   make deps       install every Debian package the build, tests and demo need
#   make deps-runtime  only what a production host needs to run regvisor
#   make install    honours DESTDIR and PREFIX

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := libsystemd libseccomp libcap openssl inih json-c gpgme

BUILD := build
# make V=1 shows full command lines
Q := $(if $(V),,@)
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wformat-security -Wpointer-arith -Wundef -Wno-unused-parameter \
	-Wno-missing-field-initializers
CPPFLAGS += -D_GNU_SOURCE -DREGVISOR_VERSION='"$(VERSION)"'
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS += $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lcrypt

SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_LDFLAGS := -fsanitize=address,undefined

# One folder per job (docs/ARCHITECTURE.md, "Layout"). common/http (the
# strict HTTP/1.1 parser) is seen only by the folders that speak HTTP: proxy/
# and the USES_ rows below.
COMMON_DIRS := common common/config common/http
PROXY_DIRS := proxy
SIGSTORE_DIRS := sigstore
SUPERVISOR_DIRS := $(sort $(dir $(wildcard supervisor/*/*.[ch])))
SUPERVISOR_DIRS := $(SUPERVISOR_DIRS:%/=%)
SRC_DIRS := $(COMMON_DIRS) $(PROXY_DIRS) $(SIGSTORE_DIRS) $(SUPERVISOR_DIRS)

# Includes go one way: common/ sees only itself (common/http only where a
# folder asks for it), proxy/ sees itself and the folders of its USES_ row
# (common/ and common/http, not common/config/: the command line hands it a
# ProxyConfig), sigstore/ the same, supervisor/ sees common/ and, folder by
# folder, the USES_ rows below (cli runs the proxy, run hands it the metrics
# memfd). Each folder is compiled with only the -iquote paths it may use, so
# a header from the wrong side fails to compile. Quoted includes also search
# the including file's own folder; <> includes never see these.
USES_proxy := common common/http
COMMON_INC := -iquote common -iquote common/config
PROXY_INC := $(USES_proxy:%=-iquote %) $(PROXY_DIRS:%=-iquote %)
SIGSTORE_INC := $(USES_proxy:%=-iquote %) $(SIGSTORE_DIRS:%=-iquote %)
SUPERVISOR_INC := $(COMMON_INC) -iquote common/http $(PROXY_DIRS:%=-iquote %) $(SIGSTORE_DIRS:%=-iquote %) \
	$(SUPERVISOR_DIRS:%=-iquote %)
# Unit tests reach into any folder.
TEST_INC := $(SUPERVISOR_INC) -iquote tests/unit

# Inside supervisor/, the folders each job may include besides common/ and
# itself (docs/ARCHITECTURE.md, "Layout"). A new folder needs a row.
USES_supervisor/cli := proxy sigstore $(SUPERVISOR_DIRS)
USES_supervisor/health := common/http sigstore supervisor/run supervisor/provision supervisor/pki supervisor/sys
USES_supervisor/run := common/http proxy supervisor/provision supervisor/pki supervisor/sys
USES_supervisor/provision := supervisor/pki supervisor/sys
USES_supervisor/client := supervisor/provision supervisor/pki
USES_supervisor/pki :=
USES_supervisor/sys :=
USES_supervisor/gc := common/http supervisor/health supervisor/provision supervisor/sys

MAIN_SRC := supervisor/cli/main.c
LIB_SRC := $(filter-out $(MAIN_SRC),$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/san/%.o)
UNIT_SRC := $(wildcard tests/unit/test-*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/san/tests/%)
HEADERS := $(foreach d,$(SRC_DIRS) tests/unit,$(wildcard $(d)/*.h))

.PHONY: all check unit integration demo bench deps deps-runtime install clean format include-check

all: include-check $(BUILD)/regvisor

# The -iquote lists below cannot stop a path spelled out relative to the
# including file ("../supervisor/x.h"): refuse any include with a '/'.
include-check:
	@! grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*/' \
		$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.[ch])) \
		|| { echo "include-check: include a header by name; the folder's -iquote list decides what it may see"; exit 1; }

$(BUILD)/regvisor: $(LIB_OBJ) $(BUILD)/obj/$(MAIN_SRC:.c=.o)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/common/%.o $(BUILD)/san/common/%.o: INC = $(COMMON_INC)
$(BUILD)/obj/proxy/%.o $(BUILD)/san/proxy/%.o: INC = $(PROXY_INC)
$(BUILD)/obj/sigstore/%.o $(BUILD)/san/sigstore/%.o: INC = $(SIGSTORE_INC)
$(foreach d,$(SUPERVISOR_DIRS),$(eval \
$(BUILD)/obj/$(d)/%.o $(BUILD)/san/$(d)/%.o: INC = $(COMMON_INC) -iquote $(d) $(USES_$(d):%=-iquote %)))

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(INC) $(CFLAGS) -c -o $@ $<

$(BUILD)/san/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "  CC-SAN  $<"
	$(Q)$(CC) $(CPPFLAGS) $(INC) $(CFLAGS) $(SAN_CFLAGS) -c -o $@ $<

$(BUILD)/san/tests/%: tests/unit/%.c $(SAN_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CPPFLAGS) $(TEST_INC) $(CFLAGS) $(SAN_CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) \
		-o $@ $< $(SAN_OBJ) $(SAN_LDFLAGS) $(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

# Kept between runs: otherwise make deletes them as intermediates after every
# `make unit` and the next one recompiles everything.
.SECONDARY: $(SAN_OBJ)

# Every unit test binary runs even when one fails; the summary counts them.
# `make unit T=config` builds and runs only tests/unit/test-config.c.
UNIT_RUN := $(if $(T),$(filter %/test-$(T),$(UNIT_BIN)),$(UNIT_BIN))
unit: $(UNIT_RUN)
	@[ -n "$(UNIT_RUN)" ] || { echo "unit: no tests/unit/test-$(T).c"; exit 2; }
	@pass=0; fail=0; for t in $(UNIT_RUN); do echo "== $$t"; \
		if ASAN_OPTIONS=detect_leaks=1 $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; echo "unit: $$pass passed, $$fail failed"; [ $$fail -eq 0 ]

integration: $(BUILD)/regvisor
	tests/integration/run

check: all unit fuzz-smoke integration

# scripts/demo installs the packages (scripts/deps) before it builds: on a
# fresh machine there is no compiler or header to build with yet.
demo:
	scripts/demo

# Not part of check: about 5 minutes, needs root, nginx and wrk.
bench: $(BUILD)/regvisor
	scripts/bench

deps:
	scripts/deps

deps-runtime:
	scripts/deps --runtime

install: $(BUILD)/regvisor
	install -D -m 0755 $(BUILD)/regvisor $(DESTDIR)$(BINDIR)/regvisor
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/regvisor|$(BINDIR)/regvisor|' units/regvisor.service >$(DESTDIR)$(UNITDIR)/regvisor.service
	sed 's|/usr/local/bin/regvisor|$(BINDIR)/regvisor|' units/regvisor-gc.service >$(DESTDIR)$(UNITDIR)/regvisor-gc.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/regvisor-gc.service
	install -m 0644 units/regvisor-gc.timer $(DESTDIR)$(UNITDIR)/regvisor-gc.timer
	chmod 0644 $(DESTDIR)$(UNITDIR)/regvisor.service
	install -m 0644 units/regvisor.socket $(DESTDIR)$(UNITDIR)/regvisor.socket
	install -D -m 0644 regvisor.conf $(DESTDIR)$(PREFIX)/share/doc/regvisor/regvisor.conf.example
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/regvisor/policy
	install -m 0644 policy/*.md $(DESTDIR)$(PREFIX)/share/regvisor/policy/
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/regvisor/README.md

format:
	clang-format -i $(foreach d,$(SRC_DIRS) tests/unit,$(wildcard $(d)/*.[ch]))

clean:
	rm -rf $(BUILD)

include tests/fuzz/fuzz.mk
