# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# urg_enable_call_checks(<target>)
#
# Compiles <target> with -finstrument-functions, so that every function
# entry in its code is a preemption checkpoint (the runtime's
# __cyg_profile_func_enter yields when sysmon asked). This is pre-1.14 Go
# exactly: loops that call functions can be preempted without signals,
# loops that call nothing cannot. Meant for the cooperative build; harmless
# in the async one. Costs one call per function entry and exit.
function(urg_enable_call_checks target)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "urg_enable_call_checks: no target named '${target}'")
  endif()
  target_compile_options(${target} PRIVATE -finstrument-functions)
endfunction()
