# Benchmarks (included by the Makefile). Bench-only tools and their BPF
# programs live under bench/ and build into $(BUILD)/bench-bin; nothing here is
# linked into the agent.
#   make bench          every bench/<topic>/run, results under build/bench/
#   make bench-smoke    the same in BENCH_SMOKE=1 mode (seconds; part of make test)

BENCH_BIN := $(BUILD)/bench-bin
ESGEN     := $(BENCH_BIN)/esgen
BENCH_TOOLS := $(ESGEN) $(BENCH_BIN)/cfgload

$(BENCH_BIN)/esgen.bpf.o: bench/tools/esgen.bpf.c bench/tools/esgen_abi.h $(GEN)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -I. -c $< -o $@

$(BENCH_BIN)/esgen.skel.h: $(BENCH_BIN)/esgen.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name esgen > $@

$(ESGEN): bench/tools/esgen.c bench/tools/esgen_abi.h tests/kernel/pkt.h $(BENCH_BIN)/esgen.skel.h
	$(call msg,LD,$@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -I. -Itests -I$(BENCH_BIN) -o $@ $< $(LDLIBS)

.PHONY: bench-build bench-smoke
bench-build: all $(BENCH_TOOLS)

bench: deps bench-build
	$(Q)bench/run.sh

bench-smoke: bench-build
	$(Q)BENCH_SMOKE=1 bench/run.sh

$(BENCH_BIN)/cfgload: bench/tools/cfgload.c $(LIBES)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $< $(LIBES) $(LDLIBS)

# IDS matching throughput (topic `ids`).
bench-build: $(BENCH_BIN)/idsmatch
$(BENCH_BIN)/idsmatch: bench/tools/idsmatch.c $(LIBES)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $< $(LIBES) $(LDLIBS)
