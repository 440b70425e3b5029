/*
 * taskid.c: naming a task_fn across separately exec'd processes.
 *
 * DESIGN
 * A function pointer means nothing in another process, but the module it
 * lies in (the executable or a shared library) and its offset there do, if
 * both processes loaded the same file. Each process lists its modules with
 * dl_iterate_phdr, keeping those with a GNU build-id (every Debian binary
 * has one); the master sends its list in the handshake, the worker finds
 * each build-id among its own modules (map[i] = its index, or -1) and
 * refuses to start if the executable's differs. A task then travels as
 * (master's module index, offset), checked again on the worker: the index
 * must map and the offset lie inside the module.
 */
#include "config.h"

#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The GNU build-id in the notes of @info's module, or length 0. */
static size_t find_build_id(const struct dl_phdr_info *info, unsigned char *out)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        size_t left = ph->p_memsz;
        while (left >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
            size_t name = (nh->n_namesz + 3) & ~(size_t)3;
            size_t desc = (nh->n_descsz + 3) & ~(size_t)3;
            size_t all = sizeof(*nh) + name + desc;
            if (all > left)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(p + sizeof(*nh), "GNU", 4) == 0 && nh->n_descsz > 0 &&
                nh->n_descsz <= CF_MPI_BUILD_ID_MAX) {
                memcpy(out, p + sizeof(*nh) + name, nh->n_descsz);
                return nh->n_descsz;
            }
            p += all;
            left -= all;
        }
    }
    return 0;
}

/* cf_mpi_modtab_load's walk: the table, and whether the executable was seen. */
struct modwalk {
    struct cf_mpi_modtab *t;
    bool past_exe;
};

static int add_module(struct dl_phdr_info *info, size_t size, void *ud)
{
    struct modwalk *wk = ud;
    struct cf_mpi_modtab *t = wk->t;
    (void)size;
    bool exe = !wk->past_exe; /* dl_iterate_phdr gives the executable first */
    wk->past_exe = true;
    if (t->n >= CF_MPI_MAX_MODULES)
        return 1;
    struct cf_mpi_module *m = &t->m[t->n];
    m->id_len = (uint8_t)find_build_id(info, m->id);
    if (m->id_len == 0)
        return exe; /* an executable without one: an empty table, not a library first */
    m->base = info->dlpi_addr;
    m->span = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && ph->p_vaddr + ph->p_memsz > m->span)
            m->span = ph->p_vaddr + ph->p_memsz;
    }
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *slash = strrchr(name, '/');
    snprintf(m->name, sizeof(m->name), "%s", slash ? slash + 1 : name);
    t->n++;
    return 0;
}

/*
 * Lists this process's modules with a build-id; the executable comes first,
 * and without a build-id of its own the list is empty (the callers refuse
 * it: every task_fn of the executable would be unnameable, and a library's
 * build-id, first in its place, would pass the handshake's executable check).
 */
void cf_mpi_modtab_load(struct cf_mpi_modtab *t)
{
    struct modwalk wk = {.t = t};
    t->n = 0;
    dl_iterate_phdr(add_module, &wk);
}

/* The index in @t of the module holding address @a, or -1. */
static int module_at(const struct cf_mpi_modtab *t, uintptr_t a)
{
    for (int i = 0; i < t->n; i++)
        if (a >= t->m[i].base && a - t->m[i].base < t->m[i].span)
            return i;
    return -1;
}

/* @fn as a descriptor, or FUT_EINVAL if it lies in no listed module. */
int cf_mpi_fn_encode(const struct cf_mpi_modtab *t, task_fn fn, uint64_t *desc)
{
    uintptr_t a;
    memcpy(&a, &fn, sizeof(a));
    int i = module_at(t, a);
    if (i < 0 || a - t->m[i].base >= ((uintptr_t)1 << CF_MPI_OFF_BITS))
        return FUT_EINVAL;
    *desc = ((uint64_t)i << CF_MPI_OFF_BITS) | (uint64_t)(a - t->m[i].base);
    return 0;
}

size_t cf_mpi_modtab_encode(const struct cf_mpi_modtab *t, unsigned char *out)
{
    uint32_t n = (uint32_t)t->n;
    memcpy(out, &n, 4);
    unsigned char *o = out + 4;
    for (int i = 0; i < t->n; i++) {
        memset(o, 0, 1 + CF_MPI_BUILD_ID_MAX);
        o[0] = t->m[i].id_len;
        memcpy(o + 1, t->m[i].id, t->m[i].id_len);
        o += 1 + CF_MPI_BUILD_ID_MAX;
    }
    return (size_t)(o - out);
}

void cf_mpi_hex(const unsigned char *id, size_t len, char *out, size_t out_len)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 3 <= out_len; i++, k += 2)
        snprintf(out + k, 3, "%02x", id[i]);
    if (out_len)
        out[k < out_len ? k : out_len - 1] = '\0';
}

/* The local index of the module with build-id @id (@len bytes), or -1. */
static int find_local(const struct cf_mpi_modtab *local, const unsigned char *id,
                      size_t len)
{
    for (int i = 0; i < local->n; i++)
        if (local->m[i].id_len == len && memcmp(local->m[i].id, id, len) == 0)
            return i;
    return -1;
}

/*
 * Matches the master's encoded table @buf against @local: map[i] is the
 * local index of the master's module i, or -1. Returns 0, or FUT_EBROKEN
 * with @why when the executables differ, or this process's libcfutures (a
 * shared library) is not one the master loaded: its wire protocol and its
 * own task functions (future_then's step) must be the master's (or @buf is
 * malformed).
 */
int cf_mpi_modtab_match(const struct cf_mpi_modtab *local, const unsigned char *buf,
                        size_t len, int *map, int *nmap, char *why, size_t why_len)
{
    uint32_t n;
    if (len < 4 || (memcpy(&n, buf, 4), n == 0) || n > CF_MPI_MAX_MODULES ||
        len != CF_MPI_MODTAB_BYTES(n)) {
        snprintf(why, why_len, "malformed module table from the master");
        return FUT_EBROKEN;
    }
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *e = buf + 4 + i * (1 + CF_MPI_BUILD_ID_MAX);
        size_t idl = e[0] <= CF_MPI_BUILD_ID_MAX ? e[0] : 0;
        map[i] = idl ? find_local(local, e + 1, idl) : -1;
    }
    *nmap = (int)n;
    if (local->n == 0 || map[0] != 0) {
        char theirs[2 * CF_MPI_BUILD_ID_MAX + 1], ours[2 * CF_MPI_BUILD_ID_MAX + 1] = "";
        cf_mpi_hex(buf + 5, buf[4] <= CF_MPI_BUILD_ID_MAX ? buf[4] : 0, theirs,
                   sizeof(theirs));
        if (local->n)
            cf_mpi_hex(local->m[0].id, local->m[0].id_len, ours, sizeof(ours));
        snprintf(why, why_len,
                 "this worker's executable differs from the master's (build-id %s, "
                 "master %s): every rank must run the same build",
                 ours[0] ? ours : "none", theirs);
        return FUT_EBROKEN;
    }
    void (*self)(void) = (void (*)(void))cf_mpi_hex;
    uintptr_t at;
    memcpy(&at, &self, sizeof(at));
    int own = module_at(local, at);
    bool theirs = own <= 0; /* linked into the executable, or no build-id */
    for (uint32_t i = 0; i < n && !theirs; i++)
        theirs = map[i] == own;
    if (!theirs) {
        char ours[2 * CF_MPI_BUILD_ID_MAX + 1];
        cf_mpi_hex(local->m[own].id, local->m[own].id_len, ours, sizeof(ours));
        snprintf(why, why_len,
                 "this worker's %s (build-id %s) is not the master's: every rank must "
                 "load the same libcfutures",
                 local->m[own].name, ours);
        return FUT_EBROKEN;
    }
    return 0;
}

/* The local function for the master's descriptor @desc, or NULL. */
task_fn cf_mpi_fn_decode(const struct cf_mpi_modtab *local, const int *map, int nmap,
                         uint64_t desc)
{
    uint64_t idx = desc >> CF_MPI_OFF_BITS;
    uint64_t off = desc & (((uint64_t)1 << CF_MPI_OFF_BITS) - 1);
    if (idx >= (uint64_t)nmap || map[idx] < 0)
        return NULL;
    const struct cf_mpi_module *m = &local->m[map[idx]];
    if (off >= m->span)
        return NULL;
    uintptr_t a = m->base + (uintptr_t)off;
    task_fn fn;
    memcpy(&fn, &a, sizeof(fn));
    return fn;
}
