# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# UrgentPackage.cmake — CPack (top level, URG_INSTALL): `cpack -G DEB` in
# the build directory makes two Debian packages from the install components
# (cmake/UrgentInstall.cmake):
#   liburgent<soversion>  Runtime: the shared library (liburgent0.1 for
#                         liburgent.so.0.1: Debian names the runtime package
#                         after the soname, so that two ABIs can coexist)
#   liburgent-dev         Development: headers, liburgent.a, the .so link, the
#                         CMake package, urgent.pc, man pages
# Installed under /usr. The variant (async or cooperative) is the build's
# and is named in the descriptions; urgent_PREEMPT and urgent.pc's preempt=
# say it to programs.
set(CPACK_PACKAGE_NAME urgent)
set(CPACK_PACKAGE_VENDOR "the urgent authors")
set(CPACK_PACKAGE_CONTACT "the urgent authors")
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPack would put it before each
# component's description, whose first line is that package's summary.
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL Runtime Development)
set(CPACK_COMPONENT_DEVELOPMENT_DEPENDS Runtime)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # <package>_<version>_<arch>.deb
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON) # -dev depends on the runtime, same version
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME liburgent${URG_SOVERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
    "Go's goroutine scheduler and asynchronous preemption for C (${URG_PREEMPT} build)
urgent runs many cheap tasks on a few threads, as Go's runtime runs goroutines:
G/M/P scheduling, work stealing, syscall handoff, an epoll netpoller,
channels, and preemption of tasks that overrun their time slice. This is the
${URG_PREEMPT} build. This package holds the shared library.")
# dpkg-shlibdeps (dpkg-dev) works out libc6 and libunwind8; without it the
# two are named by hand.
find_program(URG_DPKG_SHLIBDEPS dpkg-shlibdeps)
mark_as_advanced(URG_DPKG_SHLIBDEPS)
if(URG_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libc6, libunwind8")
endif()
set(CPACK_DEBIAN_RUNTIME_PACKAGE_GENERATE_SHLIBS ON) # shlibs file and the ldconfig trigger
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME liburgent-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
# liburgent.a links libunwind, which urgentConfig.cmake and urgent.pc find
# with pkg-config.
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS "libunwind-dev, pkgconf | pkg-config")
set(CPACK_DEBIAN_DEVELOPMENT_DESCRIPTION
    "Go's goroutine scheduler for C: development files (${URG_PREEMPT} build)
Headers (urgent.h), the static library, the CMake package
(find_package(urgent)), urgent.pc for pkg-config and the section 3 man pages
of urgent, a C library that brings Go's goroutine scheduler and asynchronous
preemption to C.")
include(CPack)
