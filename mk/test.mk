# Test layers (included by the Makefile). `make test` installs dependencies,
# builds, then runs every layer; each layer also has its own target.

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_OBJ   := $(BUILD)/asan
UNIT_SRCS  := $(sort $(wildcard tests/unit/*.c))
UNIT_BIN   := $(BUILD)/tests/unit_tests
KTEST_SRCS := $(filter-out %.bpf.c,$(sort $(wildcard tests/kernel/*.c)))
KTEST_BIN  := $(BUILD)/tests/kernel_tests
KTEST_SKELS := $(addprefix $(GEN)/skel/,$(notdir $(TEST_BPF_SRCS:.bpf.c=.skel.h)))
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJ   := $(BUILD)/fuzzobj
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECS  ?= 20
PYTEST     := $(PY) -m pytest

# Library objects rebuilt with sanitizers for the unit tests (with their header dependencies).
ASAN_LIB_OBJS := $(patsubst %.c,$(ASAN_OBJ)/%.o,$(LIB_SRCS)) $(OBJ)/embed.o
-include $(shell find $(ASAN_OBJ) -name '*.d' 2>/dev/null)
$(ASAN_OBJ)/%.o: %.c | $(GEN)/skels.h
	$(call msg,CC-ASAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(ASAN_FLAGS) -c $< -o $@

$(UNIT_BIN): $(UNIT_SRCS) $(ASAN_LIB_OBJS) tests/unit/unit.h
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(ASAN_FLAGS) -Itests -o $@ $(UNIT_SRCS) $(ASAN_LIB_OBJS) $(LDLIBS) -lcriterion

$(KTEST_BIN): $(KTEST_SRCS) $(LIBES) $(wildcard tests/kernel/*.h) $(KTEST_SKELS) $(SKELS)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests -o $@ $(KTEST_SRCS) -Wl,--whole-archive $(LIBES) -Wl,--no-whole-archive $(LDLIBS) -lcriterion

# Fuzz targets: the library compiled by clang with coverage for libFuzzer.
FUZZ_CFLAGS := $(filter-out -fstack-protector-strong,$(CFLAGS)) -fsanitize=fuzzer-no-link,address,undefined
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_OBJ)/%.o,$(LIB_SRCS)) $(OBJ)/embed.o
$(FUZZ_OBJ)/%.o: %.c | $(GEN)/skels.h
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -Wno-unknown-warning-option -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	$(call msg,FUZZ-LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

.PHONY: test-all test-build test-bench
test: deps
	$(Q)$(MAKE) --no-print-directory test-all

test-build: all $(UNIT_BIN) $(KTEST_BIN) $(FUZZ_BINS) $(BENCH_TOOLS)

test-all: test-build
	$(Q)$(MAKE) --no-print-directory test-format test-unit test-kernel test-fuzz test-openapi test-e2e \
		test-bench
	@echo "all test layers passed"

test-unit: $(UNIT_BIN)
	@echo "== unit tests (Criterion, ASan/UBSan)"
	$(Q)ASAN_OPTIONS=detect_leaks=1 $(UNIT_BIN) --jobs 2

test-kernel: $(KTEST_BIN)
	@echo "== kernel tests (BPF_PROG_TEST_RUN on the real programs)"
	$(Q)$(KTEST_BIN) --jobs 1

test-fuzz: $(FUZZ_BINS)
	@echo "== fuzz smoke ($(FUZZ_SECS)s per target)"
	$(Q)for f in $(FUZZ_BINS); do \
		name=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$name; \
		echo "  $$name"; \
		$$f -max_total_time=$(FUZZ_SECS) -print_final_stats=0 -close_fd_mask=3 \
			$(BUILD)/fuzz/corpus-$$name tests/fuzz/corpus/$$name >/dev/null 2>$(BUILD)/fuzz/$$name.log \
			|| { tail -40 $(BUILD)/fuzz/$$name.log; exit 1; }; \
	done

test-openapi: $(GEN)/openapi.json
	@echo "== OpenAPI document validation"
	$(Q)node tests/openapi/validate.js $(GEN)/openapi.json

test-e2e: all
	@echo "== end-to-end tests (namespaces, real agent, real traffic)"
	$(Q)$(PYTEST) -q -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

test-format:
	@echo "== format check"
	$(Q)$(MAKE) --no-print-directory format-check

# Benchmarks in smoke mode: checks they still run; never fails on a figure.
test-bench: bench-build
	@echo "== benchmark smoke (BENCH_SMOKE=1)"
	$(Q)BENCH_SMOKE=1 bench/run.sh
