/*
 * The coroutine switch for x86-64 System V (Linux, ELF). Called from runtime/coro.c only.
 *
 * A switched-out context is one 64-byte frame on its own stack, and its saved stack
 * pointer points at it:
 *
 *     sp+0   MXCSR (4 bytes), x87 control word (2 bytes), padding
 *     sp+8   r15     sp+16  r14     sp+24  r13     sp+32  r12
 *     sp+40  rbx     sp+48  rbp     sp+56  return address
 *
 * Only callee-saved state is kept: the caller of coro_switch_asm has already spilled
 * everything else. MXCSR is saved whole (its exception flags travel with the context).
 * A new context's frame (coro_frame_asm) holds the creator's MXCSR and x87 control word,
 * as a new C11 thread inherits its creator's floating-point environment, rbp = 0 so
 * frame-pointer unwinders stop, and returns into coro_trampoline_asm.
 *
 * Every symbol is hidden and outside the weft_ namespace: the static library keeps only
 * weft_* symbols global.
 */

    .text

/* void *coro_switch_asm(void **save_sp [rdi], void *load_sp [rsi], void *message [rdx])
 * Saves the current context into *save_sp, resumes the one at load_sp, and hands it
 * `message` as its return value. Returns the message of whoever resumes us. */
    .globl  coro_switch_asm
    .hidden coro_switch_asm
    .type   coro_switch_asm, @function
    .p2align 4
coro_switch_asm:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
.Lcoro_restore:
    /* The target's frame has the layout just described, so the CFI above holds for it. */
    movq    %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    movq    %rdx, %rax
    ret
    .cfi_endproc
    .size   coro_switch_asm, . - coro_switch_asm

/* void coro_jump_asm(void *load_sp [rdi], void *message [rsi]), noreturn
 * Resumes the context at load_sp without saving the current one. */
    .globl  coro_jump_asm
    .hidden coro_jump_asm
    .type   coro_jump_asm, @function
    .p2align 4
coro_jump_asm:
    .cfi_startproc
    movq    %rsi, %rdx
    movq    %rdi, %rsi
    jmp     .Lcoro_restore
    .cfi_endproc
    .size   coro_jump_asm, . - coro_jump_asm

/* void *coro_frame_asm(void *stack_top [rdi, 16-byte aligned], void (*entry)(void *) [rsi],
 *                      void *arg [rdx])
 * Writes a new context's first frame below stack_top and returns its stack pointer.
 * The first switch to it pops entry into r12 and arg into r13 and returns into the
 * trampoline with rsp == stack_top. */
    .globl  coro_frame_asm
    .hidden coro_frame_asm
    .type   coro_frame_asm, @function
    .p2align 4
coro_frame_asm:
    .cfi_startproc
    leaq    -64(%rdi), %rax
    stmxcsr (%rax)
    fnstcw  4(%rax)
    movq    $0, 8(%rax)
    movq    $0, 16(%rax)
    movq    %rdx, 24(%rax)
    movq    %rsi, 32(%rax)
    movq    $0, 40(%rax)
    movq    $0, 48(%rax)
    leaq    coro_trampoline_asm(%rip), %rcx
    movq    %rcx, 56(%rax)
    ret
    .cfi_endproc
    .size   coro_frame_asm, . - coro_frame_asm

/* First code a new context runs: rsp is 16-byte aligned, rbp is 0, rax holds the message
 * of the switch that started us. Calls coro_first_run(message, entry, arg), which never
 * returns. The return address is marked undefined so unwinders stop here. */
    .hidden coro_first_run
    .type   coro_trampoline_asm, @function
    .p2align 4
coro_trampoline_asm:
    .cfi_startproc
    .cfi_undefined %rip
    movq    %rax, %rdi
    movq    %r12, %rsi
    movq    %r13, %rdx
    call    coro_first_run
    ud2
    .cfi_endproc
    .size   coro_trampoline_asm, . - coro_trampoline_asm

    .section .note.GNU-stack, "", @progbits
