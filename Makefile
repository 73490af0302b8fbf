# procwide: plain GNU make.
#
#   make            build/libprocwide.so, build/libprocwide.a, build/procwide
#   make demo       build everything and run the demonstration
#   make check      the whole test suite: gcc, clang, ASan+UBSan, static
#                   glibc, musl, unprivileged, and the Go and Python runtimes
#   make test       the suite once, for the current CC and flags only
#   make bench      build the benchmarks (run them by hand)
#   make install    PREFIX=/usr/local DESTDIR=
#
# Variables for one variant: BUILD (output folder), CC, SAN=1 (ASan+UBSan),
# STATIC=1 (tests and tools linked statically).

BUILD	?= build
PREFIX	?= /usr/local
LIBDIR	?= $(PREFIX)/lib
INCDIR	?= $(PREFIX)/include
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
DESTDIR	?=

SONAME_MAJOR := 0
VERSION	:= 0.1.0
SONAME	:= libprocwide.so.$(SONAME_MAJOR)

WARN	:= -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
	   -Wformat=2 -Wundef -Wpointer-arith -Wcast-align -Wvla -Wno-unused-parameter
CSTD	:= -std=c11 -D_GNU_SOURCE
OPT	?= -O2 -g
SANFLAGS :=
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
BASE_CFLAGS := $(CSTD) $(WARN) $(OPT) -Iinclude -Isrc
LIB_CFLAGS  := $(BASE_CFLAGS) -fPIC -fvisibility=hidden
# The code that runs inside other threads (the signal handler and what it
# calls) must not read the TLS stack canary or enter a sanitizer runtime:
# it runs in raw clone() threads that may share or lack TLS.
INTHREAD_CFLAGS := -fno-stack-protector -fno-sanitize=all

LIB_SRC	:= $(sort $(wildcard src/*.c))
INTHREAD_SRC := src/handler.c src/inject_helper.c
LIB_OBJ	:= $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
LIB_HDR	:= include/procwide.h $(wildcard src/*.h src/arch/*/*.h)

TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_SH  := $(sort $(wildcard tests/test_*.sh))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLE_BIN := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
BENCH_SRC := $(sort $(wildcard bench/*.c))

ifeq ($(STATIC),1)
LINK_PROCWIDE := $(BUILD)/libprocwide.a -static
else
LINK_PROCWIDE := -L$(BUILD) -lprocwide -Wl,-rpath,'$$ORIGIN/..' -Wl,-rpath,'$$ORIGIN'
endif
LDLIBS_EXTRA := -lpthread

# Feature fragments (mk/*.mk) add their own targets, and their checks to
# CHECK_EXTRA, without touching the rules here.
.DEFAULT_GOAL := all
CHECK_EXTRA :=
include $(sort $(wildcard mk/*.mk))

.PHONY: all lib tools tests examples demo check test bench install clean \
	check-gcc check-clang check-asan check-static check-musl check-unpriv check-runtimes check-man

all: lib tools examples

lib: $(BUILD)/libprocwide.so $(BUILD)/libprocwide.a $(BUILD)/procwide.pc

# The code that runs inside other threads and in the ptrace helper calls
# nothing outside the library: a compiler that turns a loop or a structure
# copy into a call to strlen or memcpy would make it enter the C library (or
# a sanitizer's interceptor) there.  Checked on each of those objects, with
# the library symbols they may use named: another procwide__ function could
# reach the C library itself.
$(BUILD)/obj/%.o: src/%.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(if $(filter $<,$(INTHREAD_SRC)),$(INTHREAD_CFLAGS),$(SANFLAGS)) -c $< -o $@
	@case " $(INTHREAD_SRC) " in *" $< "*) bad=$$(nm -u $@ | awk '$$2 !~ /^procwide__(die|die_mismatch|inject_(gadget|stub|stub_tail|stub_end)|test_[a-z_]+)$$/ {print $$2}'); \
		if [ -n "$$bad" ]; then echo "$@: calls $$bad, outside what code in other threads may call" >&2; rm -f $@; exit 1; fi;; esac

$(BUILD)/$(SONAME): $(LIB_OBJ) src/procwide.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/procwide.map \
		-Wl,-z,defs -Wl,-z,now -Wl,-z,relro $(SANFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS_EXTRA)

$(BUILD)/libprocwide.so: $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/libprocwide.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(BUILD)/procwide.pc: procwide.pc.in
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@

# ---- command-line tool -------------------------------------------------------
tools: lib $(if $(TOOL_SRC),$(BUILD)/procwide)

$(BUILD)/procwide: $(TOOL_SRC) $(wildcard tools/*.h) $(BUILD)/libprocwide.a
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -Itools -o $@ $(TOOL_SRC) $(BUILD)/libprocwide.a \
		$(if $(filter 1,$(STATIC)),-static) $(LDLIBS_EXTRA)

# ---- examples and demo -------------------------------------------------------
examples: $(EXAMPLE_BIN)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libprocwide.so $(BUILD)/libprocwide.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -o $@ $< $(LINK_PROCWIDE) $(LDLIBS_EXTRA)

demo: all
	$(BUILD)/examples/demo

# ---- tests -------------------------------------------------------------------
tests: $(TEST_BIN)

$(BUILD)/tests/harness.o: tests/harness.c tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -Itests -c $< -o $@

$(BUILD)/tests/test_%: tests/test_%.c $(wildcard tests/*.h) $(BUILD)/tests/harness.o $(BUILD)/libprocwide.so $(BUILD)/libprocwide.a
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -Itests -o $@ $< $(BUILD)/tests/harness.o \
		$(LINK_PROCWIDE) $(LDLIBS_EXTRA)

# One variant: every C test of this build, then the shell tests.
test: tests tools
	prove -f $(TEST_BIN)

# The whole suite: every variant CI runs.  A variant whose toolchain is
# missing fails under CI=true and is skipped (with the reason) otherwise.
check: check-gcc check-clang check-asan check-static check-musl check-unpriv check-runtimes check-man $(CHECK_EXTRA)
	@echo "make check: every variant passed"

check-gcc:
	$(MAKE) BUILD=build/gcc CC=gcc test
check-clang:
	@rc=0; tests/need clang || rc=$$?; [ $$rc = 1 ] && exit 0; [ $$rc = 0 ] || exit 1; \
	$(MAKE) BUILD=build/clang CC=clang test
check-asan:
	$(MAKE) BUILD=build/asan CC=gcc SAN=1 OPT="-O1 -g" test
check-static:
	$(MAKE) BUILD=build/static CC=gcc STATIC=1 test
check-musl:
	@rc=0; tests/need musl-gcc || rc=$$?; [ $$rc = 1 ] && exit 0; [ $$rc = 0 ] || exit 1; \
	$(MAKE) BUILD=build/musl CC=musl-gcc STATIC=1 test
check-unpriv: check-gcc
	tests/run-unprivileged build/gcc
check-man:
	tests/check-man
check-runtimes: check-gcc
	prove -f $(TEST_SH)

# ---- benchmarks --------------------------------------------------------------
bench: lib
	$(MAKE) -C bench BUILD=$(abspath $(BUILD))

# ---- install -----------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 644 include/procwide.h $(DESTDIR)$(INCDIR)/
	install -m 755 $(BUILD)/$(SONAME) $(DESTDIR)$(LIBDIR)/
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libprocwide.so
	install -m 644 $(BUILD)/libprocwide.a $(DESTDIR)$(LIBDIR)/
	install -m 644 $(BUILD)/procwide.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	if [ -f $(BUILD)/procwide ]; then install -m 755 $(BUILD)/procwide $(DESTDIR)$(BINDIR)/; fi
	for m in man/*.1; do [ -f "$$m" ] && install -m 644 "$$m" $(DESTDIR)$(MANDIR)/man1/ || true; done
	for m in man/*.3; do [ -f "$$m" ] && install -m 644 "$$m" $(DESTDIR)$(MANDIR)/man3/ || true; done
	for m in man/*.7; do [ -f "$$m" ] && install -d $(DESTDIR)$(MANDIR)/man7 && install -m 644 "$$m" $(DESTDIR)$(MANDIR)/man7/ || true; done

clean:
	rm -rf build
