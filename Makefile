# eBPFsentinel — the only entry point.
#   make deps     install build, run and test dependencies (Debian + npm), idempotent
#   make          build BPF objects, skeletons and build/ebpfsentinel-agent
#   make run      start the agent on a demo namespace lab (or IFACE=...)
#   make test     every test layer: unit, kernel, fuzz smoke, e2e
#   make bench    benchmarks side by side with peers
#   make format   clang-format; make format-check verifies
# V=1 shows commands.

.DELETE_ON_ERROR:
.SUFFIXES:

BUILD   ?= build
GEN     := $(BUILD)/gen
OBJ     := $(BUILD)/obj
BPFOUT  := $(BUILD)/bpf
PY      := /usr/bin/python3
CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS    := libbpf jansson yaml-0.1 libcurl sqlite3 gnutls libmicrohttpd libulfius librhonabwy \
	   libhs libpcre2-8 libnghttp2 libprotobuf-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIC \
	   -DES_VERSION='"$(VERSION)"' -Isrc -I$(GEN) -I$(GEN)/proto $(PKG_CFLAGS) -MMD -MP
LDLIBS  := $(PKG_LIBS) -lelf -lz -lpthread -lm

BPF_CFLAGS := -target bpf -O2 -g -D__TARGET_ARCH_x86 -Wall -Werror -Wno-unused-function \
	      -I$(GEN) -Isrc -I/usr/include/x86_64-linux-gnu

# ---- sources ---------------------------------------------------------------
BPF_SRCS  := $(sort $(wildcard src/domains/*/*.bpf.c))
TEST_BPF_SRCS := $(sort $(wildcard tests/kernel/*.bpf.c))
BPF_NAMES := $(notdir $(BPF_SRCS:.bpf.c=))
BPF_OBJS  := $(addprefix $(BPFOUT)/,$(BPF_NAMES:=.bpf.o))
SKELS     := $(addprefix $(GEN)/skel/,$(BPF_NAMES:=.skel.h))
BPF_HDRS  := $(wildcard src/kernel/bpf/*.h src/abi/*.h src/domains/*/*.bpf.h)

LIB_SRCS  := $(sort $(wildcard src/core/*.c src/kernel/*.c src/api/*.c src/cli/*.c \
	       src/domains/*/*.c src/agent/*.c))
LIB_SRCS  := $(filter-out %.bpf.c src/agent/main.c,$(LIB_SRCS))
# gRPC: C generated from proto/ at build time (never committed), plus the
# descriptor set served by server reflection.
PROTO_FILES := $(sort $(shell find proto -name '*.proto'))
PROTO_SRCS  := $(patsubst proto/%.proto,$(GEN)/proto/%.pb-c.c,$(PROTO_FILES)) \
	       $(GEN)/proto/descriptors.c
LIB_SRCS  += $(PROTO_SRCS)
LIB_OBJS  := $(patsubst %.c,$(OBJ)/%.o,$(LIB_SRCS)) $(OBJ)/embed.o
MAIN_OBJ  := $(OBJ)/src/agent/main.o
LIBES     := $(BUILD)/libes.a
AGENT     := $(BUILD)/ebpfsentinel-agent

OPENAPI_PARTS := src/api/openapi.base.json $(sort $(wildcard src/domains/*/openapi.json) \
		 $(filter-out src/api/openapi.base.json,$(wildcard src/api/openapi.*.json)))
SWAGGER_DIR := node_modules/swagger-ui-dist

.PHONY: all deps run test test-unit test-kernel test-e2e test-fuzz test-openapi bench \
	fuzz format format-check clean distclean

all: $(AGENT)

# ---- BPF ---------------------------------------------------------------------
$(GEN)/vmlinux.h:
	$(call msg,VMLINUX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BPFOUT)/%.bpf.o: $(GEN)/vmlinux.h $(BPF_HDRS)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $(filter %/$*.bpf.c,$(BPF_SRCS) $(TEST_BPF_SRCS)) -o $@

$(GEN)/skel/%.skel.h: $(BPFOUT)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) gen skeleton $< name es_$* > $@

.SECONDARY:

# Each BPF object depends on its own source.
define bpf_src_dep
$(BPFOUT)/$(notdir $(1:.bpf.c=)).bpf.o: $(1)
endef
$(foreach s,$(BPF_SRCS) $(TEST_BPF_SRCS),$(eval $(call bpf_src_dep,$(s))))

# ---- generated sources ------------------------------------------------------
$(GEN)/openapi.json: $(OPENAPI_PARTS) tools/openapi_merge.py
	$(call msg,OPENAPI,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(PY) tools/openapi_merge.py $@ $(OPENAPI_PARTS)

$(GEN)/proto/%.pb-c.c $(GEN)/proto/%.pb-c.h: proto/%.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(GEN)/proto
	$(Q)protoc-c --c_out=$(GEN)/proto -Iproto $<

$(GEN)/proto/descriptors.c: $(PROTO_FILES) tools/bin2c.py
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)protoc-c --descriptor_set_out=$(GEN)/proto/descriptors.bin -Iproto $(PROTO_FILES)
	$(Q)$(PY) tools/bin2c.py es_grpc_descriptors $(GEN)/proto/descriptors.bin > $@

# Every object waits for the generated headers (skeletons, protobuf).
$(GEN)/skels.h: $(SKELS) $(PROTO_SRCS)
	$(call msg,GEN,$@)
	$(Q)printf '%s\n' $(patsubst $(GEN)/%,'#include "%"',$(SKELS)) > $@

$(OBJ)/embed.o: src/api/embed.S $(GEN)/openapi.json | $(SWAGGER_DIR)/swagger-ui-bundle.js
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -c -I$(GEN) -I. $< -o $@

$(SWAGGER_DIR)/swagger-ui-bundle.js:
	@echo "swagger-ui-dist missing: run 'make deps'" >&2; exit 1

# ---- C -------------------------------------------------------------------------
$(OBJ)/%.o: %.c | $(GEN)/skels.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBES): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(AGENT): $(MAIN_OBJ) $(LIBES)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $(MAIN_OBJ) -Wl,--whole-archive $(LIBES) -Wl,--no-whole-archive $(LDLIBS)

-include $(shell find $(OBJ) $(BUILD)/asan $(BUILD)/fuzzobj -name '*.d' 2>/dev/null)

# ---- dependencies ----------------------------------------------------------
deps:
	$(Q)mk/deps.sh

# ---- run -------------------------------------------------------------------
run: deps all
	$(Q)mk/run.sh $(IFACE)

# ---- benchmarks and tests ----------------------------------------------------
include bench/bench.mk
include mk/test.mk

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	$(Q)clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf node_modules
