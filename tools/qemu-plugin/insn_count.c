/*
 * Counts guest instructions executed (all CPUs, all ELs) between two marker instructions the
 * guest executes around the code being measured: HINT #0x7e (start) and HINT #0x7f (end),
 * unallocated hints that execute as NOPs. Inside a window, HINT #0x7c pauses the count and
 * HINT #0x7d resumes it: code waiting on something outside the guest (the TIS polling while
 * swtpm, another process, runs a command) takes a number of loops that depends on host time,
 * so it is left out. Writes "total window" to the file named by the plugin argument out=PATH
 * when QEMU exits. For `cargo xtask bench`.
 *
 * Counts are per translation block (added when a block starts), so a window is exact to
 * within one block at each end.
 *
 * With profile=PATH it also counts, for each translation block, how often it ran inside the
 * window (counting, not paused), and writes "vaddr instructions executions" lines (hex,
 * decimal, decimal) for those that did: `cargo xtask bench --profile` names their functions.
 *
 * Debian's QEMU 7.2 has TCG plugin support but ships no qemu-plugin.h, so the few functions
 * of the plugin API (version 1) used here are declared by hand, from QEMU's
 * include/qemu/qemu-plugin.h.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);
typedef void (*vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
                                                     enum qemu_plugin_op op, void *ptr,
                                                     uint64_t imm);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                         size_t idx);
extern const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
extern size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
extern void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                                   vcpu_udata_cb cb,
                                                   enum qemu_plugin_cb_flags flags,
                                                   void *userdata);

extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, vcpu_udata_cb cb,
                                                 enum qemu_plugin_cb_flags flags, void *userdata);

/* HINT #imm is 0xd503201f | imm << 5. */
#define MARK_START (0xd503201fu | (0x7eu << 5))
#define MARK_END (0xd503201fu | (0x7fu << 5))
#define MARK_PAUSE (0xd503201fu | (0x7cu << 5))
#define MARK_RESUME (0xd503201fu | (0x7du << 5))

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t insns;
static uint64_t window_start, window;
static int in_window, counting;
static char out[4096];
static char profile[4096];

/* One translation block, for the profile. */
struct block {
    uint64_t vaddr;
    uint64_t insns;
    uint64_t runs;
    struct block *next;
};
static struct block *blocks;

static void mark(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    switch ((uintptr_t)userdata) {
    case 1: /* start */
        window_start = insns;
        in_window = counting = 1;
        break;
    case 2: /* end */
        if (counting) {
            window += insns - window_start;
        }
        in_window = counting = 0;
        break;
    case 3: /* pause */
        if (counting) {
            window += insns - window_start;
            counting = 0;
        }
        break;
    case 4: /* resume */
        if (in_window && !counting) {
            window_start = insns;
            counting = 1;
        }
        break;
    }
}

static void block_ran(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    if (counting) {
        ((struct block *)userdata)->runs++;
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, n);
    if (profile[0]) {
        struct block *b = calloc(1, sizeof *b);
        if (b) {
            b->vaddr = qemu_plugin_tb_vaddr(tb);
            b->insns = n;
            b->next = blocks;
            blocks = b;
            qemu_plugin_register_vcpu_tb_exec_cb(tb, block_ran, QEMU_PLUGIN_CB_NO_REGS, b);
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t word;
        if (qemu_plugin_insn_size(insn) != 4) {
            continue;
        }
        memcpy(&word, qemu_plugin_insn_data(insn), 4);
        uintptr_t what = word == MARK_START ? 1 : word == MARK_END ? 2
                         : word == MARK_PAUSE ? 3 : word == MARK_RESUME ? 4 : 0;
        if (what) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, mark, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)what);
        }
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *f = fopen(out, "w");
    if (f) {
        fprintf(f, "%llu %llu\n", (unsigned long long)insns, (unsigned long long)window);
        fclose(f);
    }
    if (profile[0] && (f = fopen(profile, "w"))) {
        for (struct block *b = blocks; b; b = b->next) {
            if (b->runs) {
                fprintf(f, "%llx %llu %llu\n", (unsigned long long)b->vaddr,
                        (unsigned long long)b->insns, (unsigned long long)b->runs);
            }
        }
        fclose(f);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const void *info, int argc,
                                                               char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out, sizeof(out), "%s", argv[i] + 4);
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            snprintf(profile, sizeof(profile), "%s", argv[i] + 8);
        }
    }
    if (out[0] == 0) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
