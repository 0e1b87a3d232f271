// Exception-vector entry and exit shared by the kernel (EL1), the hyp (EL2) and the firmware
// (EL3): a full frame (x0-x30, ELR, SPSR; the layout of `trapframe::Frame`, 272 bytes) on
// the current stack, then `bl handler` with x0 = frame and x1 = the vector number.
// Included with include_str! into each image's global_asm!.

// trap_vector handler, kind, el: one 0x80-byte vector slot.
.macro trap_vector handler, kind, el
    .balign 0x80
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x0, elr_\el
    stp     x30, x0, [sp, #240]
    mrs     x0, spsr_\el
    str     x0, [sp, #256]
    mov     x0, sp
    mov     x1, #\kind
    bl      \handler
    b       trap_return_\el
.endm

// trap_return el: restore the frame (ELR/SPSR possibly changed by the handler) and ERET.
.macro trap_return el
trap_return_\el:
    ldr     x0, [sp, #256]
    msr     spsr_\el, x0
    ldp     x30, x0, [sp, #240]
    msr     elr_\el, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #272
    eret
.endm

// trap_table handler_sync_lower, handler_other, el: a 16-entry vector table whose
// lower-EL AArch64 synchronous entry (8) goes to the first handler, everything else to the
// second, both with the vector number in x1.
.macro trap_table sync_lower, other, el
    trap_vector \other, 0, \el
    trap_vector \other, 1, \el
    trap_vector \other, 2, \el
    trap_vector \other, 3, \el
    trap_vector \other, 4, \el
    trap_vector \other, 5, \el
    trap_vector \other, 6, \el
    trap_vector \other, 7, \el
    trap_vector \sync_lower, 8, \el
    trap_vector \other, 9, \el
    trap_vector \other, 10, \el
    trap_vector \other, 11, \el
    trap_vector \other, 12, \el
    trap_vector \other, 13, \el
    trap_vector \other, 14, \el
    trap_vector \other, 15, \el
    trap_return \el
.endm
