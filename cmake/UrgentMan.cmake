# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# UrgentMan.cmake — the section 3 man pages (URG_BUILD_MAN), made from
# docs/api.md by scripts/man.sh with pandoc at build time: urgent.3, one
# page per part of the API (urg_run.3, urg_go.3, urg_chan_new.3, ...) and a
# link page for every other function. Sets URG_MAN_DIR for the install rules.
# Without pandoc: one line, and no pages.
find_program(URG_PANDOC pandoc)
mark_as_advanced(URG_PANDOC)
if(NOT URG_PANDOC)
  message(NOTICE "urgent: pandoc not found: man pages not built "
                 "(apt-get install pandoc, or -DURG_BUILD_MAN=OFF)")
  return()
endif()
set(URG_MAN_DIR ${PROJECT_BINARY_DIR}/man/man3)
# The pages' date: honours SOURCE_DATE_EPOCH, for reproducible packages.
string(TIMESTAMP URG_MAN_DATE "%Y-%m-%d" UTC)
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/man/stamp
  COMMAND ${CMAKE_COMMAND} -E env PANDOC=${URG_PANDOC}
          bash ${PROJECT_SOURCE_DIR}/scripts/man.sh --version ${PROJECT_VERSION} --date ${URG_MAN_DATE}
          ${PROJECT_SOURCE_DIR}/docs/api.md ${URG_MAN_DIR}
  COMMAND ${CMAKE_COMMAND} -E touch ${PROJECT_BINARY_DIR}/man/stamp
  DEPENDS ${PROJECT_SOURCE_DIR}/docs/api.md ${PROJECT_SOURCE_DIR}/scripts/man.sh
  COMMENT "Man pages from docs/api.md"
  VERBATIM)
add_custom_target(urgent_man ALL DEPENDS ${PROJECT_BINARY_DIR}/man/stamp)
