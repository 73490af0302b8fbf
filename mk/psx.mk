# A drop-in libpsx (libcap's POSIX-semantics syscall library) on procwide's
# engine: $(BUILD)/libpsx.so.2, with the soname and exports of Debian 12's
# libpsx 2.66, so that programs linked with -lpsx (and libcap, when libpsx is
# linked ahead of it) run on procwide through LD_LIBRARY_PATH or LD_PRELOAD
# without being rebuilt.  See man/procwide-psx.7.
#
#   make                 also builds $(BUILD)/libpsx.so.2
#   make psx-tests       the library and the tests in $(BUILD)/tests/psx/
#   make check-psx       builds into build/gcc (and build/clang), then runs
#                        every test against Debian's libpsx and against
#                        procwide's (part of make check)
#
# The first rule here must stay `all:': this file is included before the
# Makefile's own rules, so its first target would become the default goal.

all: $(BUILD)/libpsx.so.2

PSX_SONAME := libpsx.so.2

$(BUILD)/psx/%.o: psx/%.c psx/psx_abi.h include/procwide.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(SANFLAGS) -Ipsx -c $< -o $@

PSX_OBJ := $(BUILD)/psx/psx.o $(BUILD)/psx/libcap_bind.o

# The engine comes from the static archive (built -fPIC), so this library
# needs nothing but the C library at run time and does not depend on
# libprocwide.so.0; the version script keeps its procwide_* hidden.
$(BUILD)/$(PSX_SONAME): $(PSX_OBJ) $(BUILD)/libprocwide.a psx/psx.map
	$(CC) -shared -Wl,-soname,$(PSX_SONAME) -Wl,--version-script=psx/psx.map \
		-Wl,-z,defs -Wl,-z,now -Wl,-z,relro $(SANFLAGS) -o $@ \
		$(PSX_OBJ) $(BUILD)/libprocwide.a $(LDLIBS_EXTRA)

# ---- tests -------------------------------------------------------------------
# The tests are ordinary libpsx programs, built against the installed
# (Debian) libpsx exactly as libpsx(3) says, -lpsx -lpthread
# -Wl,--wrap=pthread_create, and then run against either library.  libpsx
# is kept with --no-as-needed and named before libcap: libcap 2.66 only uses
# psx when libpsx's psx_load_syscalls comes ahead of libcap's own weak one in
# the dynamic linker's lookup order (see tests/psx/test_psx_cap.c).
PSX_NEEDED_LIBPSX := -Wl,--push-state,--no-as-needed -lpsx -Wl,--pop-state
PSX_WRAP	:= -Wl,--wrap=pthread_create
PSX_TEST_BIN	:= $(BUILD)/tests/psx/test_psx $(BUILD)/tests/psx/test_psx_cap
PSX_HELPER_BIN	:= $(BUILD)/tests/psx/cap_helper_plain $(BUILD)/tests/psx/cap_helper_capfirst

$(BUILD)/tests/psx/test_psx: tests/psx/test_psx.c tests/psx/psx_common.h \
		tests/harness.h $(BUILD)/tests/harness.o
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -Itests -o $@ $< $(BUILD)/tests/harness.o \
		$(PSX_NEEDED_LIBPSX) -lpthread $(PSX_WRAP)

$(BUILD)/tests/psx/test_psx_cap: tests/psx/test_psx_cap.c tests/psx/psx_common.h \
		tests/harness.h $(BUILD)/tests/harness.o
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -Itests -o $@ $< $(BUILD)/tests/harness.o \
		$(PSX_NEEDED_LIBPSX) -lcap -lpthread $(PSX_WRAP)

# The same libcap program linked two more ways: with libcap alone (libpsx
# only through LD_PRELOAD), and with libcap named before libpsx (the order
# of libcap's own libcap_psx_test, where libcap's weak psx_load_syscalls wins).
$(BUILD)/tests/psx/cap_helper_plain: tests/psx/cap_helper.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -o $@ $< -lcap -lpthread
$(BUILD)/tests/psx/cap_helper_capfirst: tests/psx/cap_helper.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SANFLAGS) -o $@ $< -Wl,--no-as-needed -lcap -lpsx \
		-Wl,--as-needed -lpthread $(PSX_WRAP)

.PHONY: psx-tests check-psx
psx-tests: $(BUILD)/$(PSX_SONAME) $(PSX_TEST_BIN) $(PSX_HELPER_BIN)

# Needs libcap-dev (<sys/psx_syscall.h>, -lpsx, -lcap, all in that one
# package): without it the check is skipped with the reason, or fails under
# CI=true, as tests/need does.  The recipe keeps $(MAKE) on lines of its own,
# so that make -n prints the test runs instead of running them.
PSX_RUN_TESTS = $(patsubst $(BUILD)/%,build/gcc/%,$(PSX_TEST_BIN))
CHECK_EXTRA += check-psx
# Under `make check' it shares build/gcc with check-gcc: run after it, so
# that make -j does not build the same objects twice at once.
ifneq ($(filter check,$(MAKECMDGOALS)),)
check-psx: check-gcc
endif
ifeq ($(wildcard /usr/include/sys/psx_syscall.h),)
check-psx:
	@if [ "$${CI:-}" = true ]; then \
		echo "FAIL: check-psx: libcap-dev is not installed (CI=true: it needs <sys/psx_syscall.h>, -lpsx and -lcap)" >&2; \
		exit 1; \
	fi; \
	echo "SKIP: check-psx: libcap-dev is not installed, so the libpsx tests cannot be built (install libcap-dev)" >&2
else
check-psx:
	$(MAKE) BUILD=build/gcc CC=gcc psx-tests
	@rc=0; tests/need clang || rc=$$?; [ $$rc = 1 ] && exit 0; [ $$rc = 0 ] || exit 1; \
	$(MAKE) BUILD=build/clang CC=clang psx-tests
	groff -ww -z -man man/procwide-psx.7
	@rc=0; \
	echo "# libpsx tests against the installed libpsx: $$(gcc -print-file-name=libpsx.so.2)"; \
	prove -f --exec 'tests/psx/run.sh debian build/gcc' $(PSX_RUN_TESTS) || rc=1; \
	echo "# libpsx tests against procwide's build/gcc/libpsx.so.2"; \
	prove -f --exec 'tests/psx/run.sh procwide build/gcc' $(PSX_RUN_TESTS) || rc=1; \
	exit $$rc
endif
