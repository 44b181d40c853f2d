/*
 * preload.c
 *	  Preloaded after the ASan runtime into the uninstrumented server.
 *
 * The ASan runtime, preloaded into a program that was not built with it,
 * initialises only at the first malloc.  In PostgreSQL's binary that first
 * malloc comes from libgpg-error's constructor, inside bindtextdomain(),
 * which holds glibc's libintl lock.  While initialising, the runtime looks up
 * swift_demangle with dlsym() and clears the failure with dlerror(), which
 * translates the message and so takes the same lock again: the lock is left
 * broken and the process hangs in its next gettext call.  With the symbol
 * present the lookup succeeds, dlerror() has nothing to translate, and
 * initialisation takes no lock.  Returning NULL tells the runtime to demangle
 * names itself.
 *
 * The UBSan runtime initialises at its first report, in a backend, and reads
 * UBSAN_OPTIONS from /proc/self/environ, where PostgreSQL has by then written
 * the process title over the environment: the options would be lost (no log
 * file, no stack trace).  PostgreSQL keeps a copy of the environment that
 * getenv() reads, and the runtime asks __ubsan_default_options() first.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

char	   *swift_demangle(const char *mangled, size_t length, char *out,
						   size_t *outlength, uint32_t flags);

char *
swift_demangle(const char *mangled, size_t length, char *out,
			   size_t *outlength, uint32_t flags)
{
	return NULL;
}

const char *__ubsan_default_options(void);

const char *
__ubsan_default_options(void)
{
	const char *options = getenv("UBSAN_OPTIONS");

	return options != NULL ? options : "";
}
