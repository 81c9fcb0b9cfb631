/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * gdb_scripts.S — tools/gdb/urgent-gdb.py, embedded in liburgent (and in
 * every program linked with liburgent.a) as an inline script in the
 * .debug_gdb_scripts section, so that gdb loads `info urg-tasks` and
 * `urg-task N bt` by itself wherever the library is, once auto-loading
 * from it is allowed (docs/debugging.md: add-auto-load-safe-path).
 *
 * The entry is gdb's inline form: a type byte (4: Python text), the
 * script's name on the first line, its text, a NUL. An entry that only
 * names the file (type 1) would make gdb look the file up along its
 * source path, which an installed library cannot count on. The section
 * is not allocated (no "a" flag): it costs no memory at run time, and
 * `strip --strip-debug` drops it with the rest of the debug info, which
 * the script needs anyway. CMake passes the folder of the script to the
 * assembler (-Wa,-I) for .incbin.
 *
 * urg__gdb_scripts is there only to be referenced (dump.c): a static link
 * takes an archive member only for a symbol it needs, and this one has no
 * code.
 */
        .pushsection .debug_gdb_scripts, "MS", @progbits, 1
        .byte   4
        .ascii  "urgent-gdb.py\n"
        .incbin "urgent-gdb.py"
        .byte   0
        .popsection

        .section .rodata
        .globl  urg__gdb_scripts
        .hidden urg__gdb_scripts
        .type   urg__gdb_scripts, @object
urg__gdb_scripts:
        .byte   0
        .size   urg__gdb_scripts, 1

        .section .note.GNU-stack, "", %progbits
