/* Makes libcap use this libpsx when a program was linked -lcap -lpsx.
 *
 * libcap 2.66 (libcap/cap_proc.c) takes the all-threads path only if the
 * psx_load_syscalls its constructor calls -- through its own PLT slot -- is
 * libpsx's: its own weak fallback clears a private flag
 * (_libcap_overrode_syscalls), after which cap_set_proc(), cap_drop_bound(),
 * cap_set_secbits() and the rest call the C library directly in the calling
 * thread, and nothing exported can set the flag again (cap_set_syscall()
 * only replaces the function pointers; checked by disassembly of Debian's
 * libcap.so.2.66).  The dynamic linker binds that slot to the first
 * definition in lookup order: libpsx's with -lpsx -lcap, libcap's own weak
 * one with -lcap -lpsx (the order of libpsx(3)'s example), whatever libpsx
 * is loaded.
 *
 * glibc runs the constructors of sibling libraries in reverse load order,
 * so with -lcap -lpsx this one runs before libcap's (this library must never
 * depend on libcap, or the order flips).  It then points libcap's slot at
 * this library's psx_load_syscalls -- the binding -lpsx -lcap gives -- if and
 * only if the slot still holds libcap's own fallback; the slot is in
 * libcap's read-only-after-relocation pages (-z now, RELRO), which are made
 * writable for the one store and read-only again.  Nothing else is touched:
 * a libcap without the slot or a slot bound elsewhere (LD_PRELOAD, -lpsx
 * -lcap) are left alone; a libcap already initialised (a library loaded
 * before this one needs it, or this one came by dlopen: the flag is
 * cleared, too late) or an mprotect refused by a security policy are left
 * alone too, with one line on stderr, since cap_set_proc() will then change
 * only the calling thread. */
#include "psx_abi.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GLIBC__)

/* This library's own definition (an alias made in psx.c): the exported
 * name, used from in here, binds to libcap's weak one in exactly the case
 * handled. */
extern __typeof__(psx_load_syscalls) procwide__psx_load_syscalls_self
	__attribute__((visibility("hidden")));

/* One line on stderr: cap_set_proc() and the rest will change only the
 * calling thread, and nothing else would say so. */
static void warn(const char *why)
{
	static const char a[] = "procwide libpsx: ";
	static const char b[] = "; libcap's cap_set_proc() and the rest will change only the calling "
				"thread (link -lpsx before -lcap, or LD_PRELOAD this library)\n";
	char line[512];
	size_t n = 0;
	for (const char *p = a; *p && n < sizeof line; p++)
		line[n++] = *p;
	for (const char *p = why; *p && n < sizeof line; p++)
		line[n++] = *p;
	for (const char *p = b; *p && n < sizeof line; p++)
		line[n++] = *p;
	ssize_t w = write(2, line, n);
	(void)w;
}

static bool is_libcap(const char *path)
{
	const char *slash = strrchr(path, '/');
	return strcmp(slash ? slash + 1 : path, "libcap.so.2") == 0;
}

/* libcap 2.66 works out cap_max_bits() in its constructor; 0 before. */
static bool libcap_initialised(void)
{
	unsigned (*max_bits)(void) = (unsigned (*)(void))dlsym(RTLD_DEFAULT, "cap_max_bits");
	return max_bits && max_bits() != 0;
}

static int rebind(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	if (!info->dlpi_name || !is_libcap(info->dlpi_name))
		return 0;
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t relro_lo = 0, relro_hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const void *)(info->dlpi_addr + ph->p_vaddr);
		if (ph->p_type == PT_GNU_RELRO) {
			relro_lo = info->dlpi_addr + ph->p_vaddr;
			relro_hi = relro_lo + ph->p_memsz;
		}
	}
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *jmprel = NULL;
	size_t jmprelsz = 0;
	for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
		/* glibc relocates these to run-time addresses, except in a
		 * read-only dynamic section: then they are still offsets. */
		uintptr_t a = dyn->d_un.d_ptr;
		if (a < info->dlpi_addr)
			a += info->dlpi_addr;
		if (dyn->d_tag == DT_SYMTAB)
			symtab = (const void *)a;
		else if (dyn->d_tag == DT_STRTAB)
			strtab = (const void *)a;
		else if (dyn->d_tag == DT_JMPREL)
			jmprel = (const void *)a;
		else if (dyn->d_tag == DT_PLTRELSZ)
			jmprelsz = dyn->d_un.d_val;
	}
	if (!symtab || !strtab || !jmprel)
		return 1;
	for (size_t i = 0; i < jmprelsz / sizeof *jmprel; i++) {
		const ElfW(Rela) *r = &jmprel[i];
		const ElfW(Sym) *s = &symtab[ELF64_R_SYM(r->r_info)];
		if (ELF64_R_TYPE(r->r_info) != R_X86_64_JUMP_SLOT ||
		    strcmp(strtab + s->st_name, "psx_load_syscalls") != 0)
			continue;
		void **slot = (void **)(info->dlpi_addr + r->r_offset);
		if (s->st_shndx == SHN_UNDEF || *slot != (void *)(info->dlpi_addr + s->st_value))
			return 1; /* not libcap's own fallback: leave it */
		if (libcap_initialised()) {
			/* Its constructor has run already (a library loaded
			 * before this one needs libcap, or this one came by
			 * dlopen): the flag is cleared, too late. */
			warn("libcap was initialised before this libpsx and bound its own psx_load_syscalls");
			return 1;
		}
		/* glibc protects RELRO rounded down to whole pages at both
		 * ends: only a page inside that is read-only (and may be made
		 * read-only again); one past it is writable already. */
		uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
		uintptr_t page_lo = relro_lo & ~(pg - 1), page_hi = relro_hi & ~(pg - 1);
		bool ro = (uintptr_t)slot >= page_lo && (uintptr_t)slot < page_hi;
		void *page = (void *)((uintptr_t)slot & ~(pg - 1));
		if (ro && mprotect(page, (size_t)pg, PROT_READ | PROT_WRITE) != 0) {
			warn("libcap's binding could not be changed (mprotect refused)");
			return 1;
		}
		*slot = (void *)procwide__psx_load_syscalls_self;
		if (ro)
			mprotect(page, (size_t)pg, PROT_READ);
		return 1;
	}
	return 1;
}

__attribute__((constructor)) static void pw_psx_bind_libcap(void)
{
	dl_iterate_phdr(rebind, NULL);
}

#endif
