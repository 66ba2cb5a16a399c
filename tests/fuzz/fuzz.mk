# Fuzzing for the proxy's parsers and the signature store's checks,
# included from the main Makefile.
#
#   make fuzz-smoke   build every fuzzer and run each for FUZZ_SMOKE_SECONDS
#                     (5 s; part of make check)
#   make fuzz         run each for FUZZ_SECONDS (300 s)
#
# Fuzzers are built with clang and libFuzzer, ASan and UBSan into
# $(BUILD)/fuzz/. Each run starts from the checked-in seed corpus
# tests/fuzz/corpus-<name>/ (read only) and keeps what it finds in
# $(BUILD)/fuzz/corpus-<name>/; crashes land in $(BUILD)/fuzz/ as
# crash-<name>-<sha1>. Reproduce one with: $(BUILD)/fuzz/fuzz-<name> FILE

BUILD ?= build
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_FLAGS ?=
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -D_GNU_SOURCE -iquote common -iquote common/http -iquote proxy -iquote tests/fuzz \
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wwrite-strings \
	-Wno-missing-field-initializers
FUZZ_NAMES := http1 path forward sigstore proxy-protocol
FUZZ_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz-%)

.PHONY: fuzz fuzz-smoke fuzz-build

fuzz-build: $(FUZZ_BIN)

$(BUILD)/fuzz/fuzz-http1: tests/fuzz/fuzz-http1.c tests/fuzz/fuzz-check.h common/http/http1.c common/http/http1.h common/macro.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

$(BUILD)/fuzz/fuzz-path: tests/fuzz/fuzz-path.c tests/fuzz/fuzz-check.h proxy/route.c proxy/route.h common/macro.h \
		common/http/sigcheck.c common/reponame.c common/http/sigcheck.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

$(BUILD)/fuzz/fuzz-forward: tests/fuzz/fuzz-forward.c tests/fuzz/fuzz-check.h proxy/forward.c proxy/headers.c common/http/http1.c proxy/route.c \
		common/http/sigcheck.c common/reponame.c common/http/sigcheck.h proxy/forward.h proxy/headers.h common/http/http1.h proxy/route.h common/macro.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

$(BUILD)/fuzz/fuzz-sigstore: tests/fuzz/fuzz-sigstore.c tests/fuzz/fuzz-check.h common/http/sigcheck.c common/reponame.c sigstore/sigjson.c \
		sigstore/sigmanifest.c common/http/sigcheck.h sigstore/sigjson.h sigstore/sigmanifest.h common/macro.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -iquote sigstore -o $@ $(filter %.c,$^) $(shell $(PKG_CONFIG) --cflags --libs json-c)

$(BUILD)/fuzz/fuzz-proxy-protocol: tests/fuzz/fuzz-proxy-protocol.c tests/fuzz/fuzz-check.h proxy/proxy-protocol.c \
		proxy/proxy-protocol.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

# $(call fuzz-run,name,seconds)
define fuzz-run
	@mkdir -p $(BUILD)/fuzz/corpus-$(1)
	@echo "== fuzz-$(1) for $(2) s"
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/fuzz/fuzz-$(1) -max_total_time=$(2) -print_final_stats=1 \
		-dict=tests/fuzz/http1.dict -artifact_prefix=$(BUILD)/fuzz/crash-$(1)- $(FUZZ_FLAGS) \
		$(BUILD)/fuzz/corpus-$(1) tests/fuzz/corpus-$(1)

endef

fuzz-smoke: $(FUZZ_BIN)
	$(foreach f,$(FUZZ_NAMES),$(call fuzz-run,$(f),$(FUZZ_SMOKE_SECONDS)))

fuzz: $(FUZZ_BIN)
	$(foreach f,$(FUZZ_NAMES),$(call fuzz-run,$(f),$(FUZZ_SECONDS)))
