# The layering check must fail, naming file, line and layers, on a copy of
# common/ with planted violations (and pass on the untouched copy).
#   cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch> -P CheckCatchesViolations.cmake
cmake_minimum_required(VERSION 3.25)
set(check ${SOURCE_DIR}/common/cmake/CheckLayers.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
file(COPY ${SOURCE_DIR}/common DESTINATION ${WORK_DIR})
set(tree ${WORK_DIR}/common)

execute_process(COMMAND ${CMAKE_COMMAND} -DCOMMON_DIR=${tree} -P ${check} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the untouched copy of common/ failed the check:\n${err}")
endif()

function(expect_refused what planted_file planted_line expected)
  file(READ ${tree}/${planted_file} original)
  file(APPEND ${tree}/${planted_file} "${planted_line}\n")
  execute_process(COMMAND ${CMAKE_COMMAND} -DCOMMON_DIR=${tree} -P ${check} RESULT_VARIABLE rc ERROR_VARIABLE err)
  file(WRITE ${tree}/${planted_file} "${original}")
  string(REGEX REPLACE "[ \n]+" " " err "${err}")
  if(rc EQUAL 0)
    message(FATAL_ERROR "${what}: the check passed")
  endif()
  string(FIND "${err}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${what}: expected '${expected}' in:\n${err}")
  endif()
  message(STATUS "${what}: refused as expected")
endfunction()

expect_refused("storage including the bus" src/Spool.cpp "#include \"ferry/Bus.h\""
               "includes ferry/Bus.h (layer bus) from layer storage")
expect_refused("the codec including sdbus-c++" src/Wire.cpp "#include <sdbus-c++/sdbus-c++.h>"
               "includes <sdbus-c++/sdbus-c++.h> in layer net; only bus may")
expect_refused("base including config" include/ferry/Files.h "#include \"ferry/YamlReader.h\""
               "includes ferry/YamlReader.h (layer config) from layer base")
expect_refused("libssh outside the SSH files" src/Stream.cpp "#include <libssh/libssh.h>"
               "includes <libssh/libssh.h> in layer net; only SshSession, SshKeys may")
file(WRITE ${tree}/src/Stray.cpp "// a file nobody placed\n")
execute_process(COMMAND ${CMAKE_COMMAND} -DCOMMON_DIR=${tree} -P ${check} RESULT_VARIABLE rc ERROR_VARIABLE err)
string(REGEX REPLACE "[ \n]+" " " err "${err}")
string(FIND "${err}" "common/src/Stray.cpp: belongs to no layer" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "a file of no layer was not refused:\n${err}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
