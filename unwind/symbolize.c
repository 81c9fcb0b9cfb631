/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * unwind/symbolize.c — turning a PC into "function+0x1f (module)" inside
 * a signal handler.
 *
 * dladdr takes the loader lock and sees only dynamic symbols (a program's
 * own functions are not there unless linked with -rdynamic). Instead we
 * map the object's file read-only (open and mmap are async-signal-safe)
 * and scan its .symtab, falling back to .dynsym for stripped files. A
 * small table remembers the mappings; a slot is claimed with a CAS, so
 * two handlers racing at worst map a file twice.
 */
#include "unwind.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYMCACHE 64

struct symfile {
    uint32_t state; /* atomic: 0 free, 1 being filled, 2 ready, 3 failed */
    char path[160];
    const char *map;
    size_t size;
    const Elf64_Sym *syms;
    size_t nsyms;
    const char *strs;
    size_t strsize;
};

static struct symfile cache[SYMCACHE];

static void load(struct symfile *f, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return;
    }
    const char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    size_t size = (size_t)st.st_size;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size) {
        munmap((void *)map, size);
        return;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(map + eh->e_shoff);
    const Elf64_Shdr *best = NULL;
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type == SHT_SYMTAB)
            best = &sh[i];
        else if (sh[i].sh_type == SHT_DYNSYM && !best)
            best = &sh[i];
    }
    if (!best || best->sh_link >= eh->e_shnum || best->sh_offset + best->sh_size > size) {
        munmap((void *)map, size);
        return;
    }
    const Elf64_Shdr *str = &sh[best->sh_link];
    if (str->sh_offset + str->sh_size > size) {
        munmap((void *)map, size);
        return;
    }
    f->map = map;
    f->size = size;
    f->syms = (const Elf64_Sym *)(map + best->sh_offset);
    f->nsyms = best->sh_size / sizeof(Elf64_Sym);
    f->strs = map + str->sh_offset;
    f->strsize = str->sh_size;
}

static struct symfile *lookup_file(const char *path)
{
    for (int i = 0; i < SYMCACHE; i++) {
        struct symfile *f = &cache[i];
        uint32_t s = ld_acquire(&f->state);
        if (s >= 2 && !strcmp(f->path, path))
            return s == 2 ? f : NULL;
        if (s == 0 && cas(&f->state, 0u, 1u)) {
            urg__strlcpy(f->path, path, sizeof(f->path));
            load(f, path);
            st_release(&f->state, f->map ? 2u : 3u);
            return f->map ? f : NULL;
        }
    }
    return NULL;
}

/* Signal-safe. */
void urg__pb_symbol(urg__pbuf *b, const struct urg__modview *v, uintptr_t pc)
{
    urg__pb_hex(b, pc);
    const struct urg__module *m = urg__module_find(v, pc);
    if (!m) {
        urg__pb_str(b, " ?");
        return;
    }
    const char *path = m->name[0] ? m->name : "/proc/self/exe";
    struct symfile *f = m->name[0] == 0 || m->name[0] == '/' ? lookup_file(path) : NULL;
    const Elf64_Sym *hit = NULL;
    if (f) {
        uintptr_t rel = pc - m->bias;
        for (size_t i = 0; i < f->nsyms; i++) {
            const Elf64_Sym *s = &f->syms[i];
            if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_value == 0)
                continue;
            if (rel >= s->st_value && rel < s->st_value + (s->st_size ? s->st_size : 1))
                if (!hit || s->st_value > hit->st_value)
                    hit = s;
        }
    }
    urg__pb_str(b, " ");
    if (hit && hit->st_name < f->strsize) {
        urg__pb_str(b, f->strs + hit->st_name);
        urg__pb_str(b, "+");
        urg__pb_hex(b, pc - m->bias - hit->st_value);
    } else {
        urg__pb_str(b, "?");
    }
    const char *base = strrchr(m->name, '/');
    urg__pb_str(b, " (");
    urg__pb_str(b, m->name[0] ? (base ? base + 1 : m->name) : "program");
    urg__pb_str(b, ")");
}
