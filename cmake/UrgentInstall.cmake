# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# UrgentInstall.cmake — install rules (URG_INSTALL), in two components that
# CPack turns into two Debian packages (cmake/UrgentPackage.cmake):
#   Runtime      liburgent.so.<soversion> and its real file, the licence
#   Development  the headers, the .so link, liburgent.a, the CMake package
#                (urgentConfig.cmake: urgent::urgent, urgent::urgent_static,
#                urg_enable_call_checks, urgent_PREEMPT), urgent.pc, man pages,
#                the gdb commands (share/urgent/gdb/urgent-gdb.py)
# `cmake --install build` installs both; `--component Runtime` one.

install(TARGETS urgent EXPORT urgentTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime NAMELINK_COMPONENT Development
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS urgent_static EXPORT urgentTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development)
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT Runtime)
# The gdb commands (docs/debugging.md), for `source`: the library carries
# them too (.debug_gdb_scripts, runtime/gdb_scripts.S).
install(FILES tools/gdb/urgent-gdb.py DESTINATION ${CMAKE_INSTALL_DATADIR}/urgent/gdb
  COMPONENT Development)
install(FILES ${URG_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development)

set(URG_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/urgent)
install(EXPORT urgentTargets NAMESPACE urgent:: DESTINATION ${URG_CMAKE_DIR}
        COMPONENT Development)
configure_package_config_file(cmake/urgentConfig.cmake.in
  ${PROJECT_BINARY_DIR}/urgentConfig.cmake
  INSTALL_DESTINATION ${URG_CMAKE_DIR})
# 0.x: a minor version may break the ABI and the API, so only the same
# minor satisfies a request (find_package(urgent 0.1) takes 0.1.x).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/urgentConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/urgentConfig.cmake ${PROJECT_BINARY_DIR}/urgentConfigVersion.cmake
  cmake/UrgentCallChecks.cmake
  DESTINATION ${URG_CMAKE_DIR} COMPONENT Development)

# urgent.pc finds its prefix from its own place (${pcfiledir}), so the tree
# can be moved; only absolute install directories stay absolute.
set(URG_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
set(URG_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(URG_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(URG_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  # From <prefix>/<libdir>/pkgconfig back up to <prefix>: one ".." a level.
  set(URG_PC_PREFIX "\${pcfiledir}/..")
  string(REGEX REPLACE "[^/]+" ".." _urg_up "${CMAKE_INSTALL_LIBDIR}")
  string(REGEX REPLACE "/+$" "" _urg_up "${_urg_up}")
  string(APPEND URG_PC_PREFIX "/${_urg_up}")
  unset(_urg_up)
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(URG_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(cmake/urgent.pc.in ${PROJECT_BINARY_DIR}/urgent.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/urgent.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT Development)

if(URG_MAN_DIR)
  install(DIRECTORY ${URG_MAN_DIR} DESTINATION ${CMAKE_INSTALL_MANDIR} COMPONENT Development
          FILES_MATCHING PATTERN "*.3")
endif()
