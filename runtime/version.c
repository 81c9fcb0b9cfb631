/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * version.c — urg_version: the version of the library itself.
 *
 * The string is compiled in from urgent_version.h, which CMake makes from
 * project(VERSION); a program compares it with the URG_VERSION_* macros it
 * was compiled against to see which library it actually loaded.
 */
#include "internal.h"

/* urg_version returns "MAJOR.MINOR.PATCH" of this library, a static string.
 * Context: any, signal handlers included. */
const char *urg_version(void) { return URG_VERSION_STRING; }
