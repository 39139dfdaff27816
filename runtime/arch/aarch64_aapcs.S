/*
 * The coroutine switch for AArch64 AAPCS64 (Linux, ELF). Called from runtime/coro.c only.
 *
 * A switched-out context is one 176-byte frame on its own stack, and its saved stack
 * pointer points at it:
 *
 *     sp+0   x19 x20    sp+16  x21 x22    sp+32  x23 x24    sp+48  x25 x26
 *     sp+64  x27 x28    sp+80  x29 x30    sp+96  d8  d9     sp+112 d10 d11
 *     sp+128 d12 d13    sp+144 d14 d15    sp+160 FPCR, padding
 *
 * Only callee-saved state is kept: the caller of coro_switch_asm has already spilled
 * everything else. FPCR is written only when it differs, since a write may stall the
 * pipeline. A new context's frame (coro_frame_asm) holds the creator's FPCR, as a new C11
 * thread inherits its creator's floating-point environment, x29 = 0 so frame-pointer
 * unwinders stop, and x30 = coro_trampoline_asm, which the first switch returns into.
 *
 * LR is never signed here (PAC): the C callers sign and check their own return addresses,
 * and the switch hands every context back its own sp and x30 unchanged. Entry points
 * start with `bti c` when the build enables BTI, and the GNU property note says so.
 *
 * Every symbol is hidden and outside the weft_ namespace: the static library keeps only
 * weft_* symbols global.
 */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C hint #34
#define FEATURE_BTI 1
#else
#define BTI_C
#define FEATURE_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#define FEATURE_PAC 2
#else
#define FEATURE_PAC 0
#endif

    .text

/* void *coro_switch_asm(void **save_sp [x0], void *load_sp [x1], void *message [x2])
 * Saves the current context into *save_sp, resumes the one at load_sp, and hands it
 * `message` as its return value. Returns the message of whoever resumes us. */
    .globl  coro_switch_asm
    .hidden coro_switch_asm
    .type   coro_switch_asm, %function
    .p2align 4
coro_switch_asm:
    .cfi_startproc
    BTI_C
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    .cfi_offset x19, -176
    .cfi_offset x20, -168
    .cfi_offset x21, -160
    .cfi_offset x22, -152
    .cfi_offset x23, -144
    .cfi_offset x24, -136
    .cfi_offset x25, -128
    .cfi_offset x26, -120
    .cfi_offset x27, -112
    .cfi_offset x28, -104
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    .cfi_offset d8, -80
    .cfi_offset d9, -72
    .cfi_offset d10, -64
    .cfi_offset d11, -56
    .cfi_offset d12, -48
    .cfi_offset d13, -40
    .cfi_offset d14, -32
    .cfi_offset d15, -24
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x10, sp
    str     x10, [x0]
.Lcoro_restore:
    /* x1: target sp, x2: message, x9: current FPCR. The target's frame has the layout
     * just described, so the CFI above holds for it. */
    mov     sp, x1
    ldr     x10, [sp, #160]
    cmp     x9, x10
    b.eq    1f
    msr     fpcr, x10
1:
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    .cfi_def_cfa_offset 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    mov     x0, x2
    ret
    .cfi_endproc
    .size   coro_switch_asm, . - coro_switch_asm

/* void coro_jump_asm(void *load_sp [x0], void *message [x1]), noreturn
 * Resumes the context at load_sp without saving the current one. */
    .globl  coro_jump_asm
    .hidden coro_jump_asm
    .type   coro_jump_asm, %function
    .p2align 4
coro_jump_asm:
    .cfi_startproc
    BTI_C
    mrs     x9, fpcr
    mov     x2, x1
    mov     x1, x0
    b       .Lcoro_restore
    .cfi_endproc
    .size   coro_jump_asm, . - coro_jump_asm

/* void *coro_frame_asm(void *stack_top [x0, 16-byte aligned], void (*entry)(void *) [x1],
 *                      void *arg [x2])
 * Writes a new context's first frame below stack_top and returns its stack pointer.
 * The first switch to it loads entry into x19 and arg into x20 and returns into the
 * trampoline with sp == stack_top. */
    .globl  coro_frame_asm
    .hidden coro_frame_asm
    .type   coro_frame_asm, %function
    .p2align 4
coro_frame_asm:
    .cfi_startproc
    BTI_C
    sub     x0, x0, #176
    stp     x1, x2, [x0, #0]
    stp     xzr, xzr, [x0, #16]
    stp     xzr, xzr, [x0, #32]
    stp     xzr, xzr, [x0, #48]
    stp     xzr, xzr, [x0, #64]
    adr     x9, coro_trampoline_asm
    stp     xzr, x9, [x0, #80]
    stp     xzr, xzr, [x0, #96]
    stp     xzr, xzr, [x0, #112]
    stp     xzr, xzr, [x0, #128]
    stp     xzr, xzr, [x0, #144]
    mrs     x9, fpcr
    stp     x9, xzr, [x0, #160]
    ret
    .cfi_endproc
    .size   coro_frame_asm, . - coro_frame_asm

/* First code a new context runs, reached by `ret` (so it needs no BTI landing pad): sp is
 * 16-byte aligned, x29 is 0, x0 holds the message of the switch that started us. Calls
 * coro_first_run(message, entry, arg), which never returns. The return address is marked
 * undefined so unwinders stop here. */
    .hidden coro_first_run
    .type   coro_trampoline_asm, %function
    .p2align 4
coro_trampoline_asm:
    .cfi_startproc
    .cfi_undefined x30
    mov     x1, x19
    mov     x2, x20
    bl      coro_first_run
    brk     #0
    .cfi_endproc
    .size   coro_trampoline_asm, . - coro_trampoline_asm

#if FEATURE_BTI || FEATURE_PAC
    /* GNU_PROPERTY_AARCH64_FEATURE_1_AND: this object is BTI and/or PAC compatible. */
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .word   4
    .word   16
    .word   5
    .asciz  "GNU"
    .word   0xc0000000
    .word   4
    .word   FEATURE_BTI | FEATURE_PAC
    .word   0
    .popsection
#endif

    .section .note.GNU-stack, "", %progbits
