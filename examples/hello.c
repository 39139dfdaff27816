#include <stdio.h>
#include <weft.h>

static void *square(void *arg) {
    weft_sleep(0.01);                      /* suspends this task only */
    long n = (long)arg;
    return (void *)(n * n);
}

static void *main_task(void *unused) {
    (void)unused;
    weft_future *fs[10];
    for (long i = 0; i < 10; i++) fs[i] = weft_spawn(square, (void *)i);
    long sum = 0;
    for (int i = 0; i < 10; i++) {
        void *r;
        if (weft_await(fs[i], &r) == 0) sum += (long)r;
        weft_future_release(fs[i]);
    }
    printf("sum of squares: %ld on %u workers\n", sum, weft_workers());
    return NULL;
}

int main(void) { return weft_run(main_task, NULL, NULL, NULL) ? 1 : 0; }
