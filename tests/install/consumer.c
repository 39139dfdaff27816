/* A program built against an installed weft: it runs a task, and checks that the host's
 * malloc is still libc's (weft's jemalloc is linked in with its symbols hidden). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <weft.h>

static void *answer(void *arg)
{
    (void)arg;
    weft_sleep(0.001);
    return (void *)42;
}

int main(void)
{
    void *r = NULL;
    if (weft_run(answer, NULL, NULL, &r) || r != (void *)42) {
        fprintf(stderr, "consumer: weft_run failed\n");
        return 1;
    }
    Dl_info info;
    void *(*host_malloc)(size_t) = malloc;
    if (!dladdr((void *)host_malloc, &info) || !info.dli_fname || !strstr(info.dli_fname, "libc.so")) {
        fprintf(stderr, "consumer: malloc comes from %s, not libc\n",
                info.dli_fname ? info.dli_fname : "the executable");
        return 1;
    }
    puts("consumer: ok");
    return 0;
}
