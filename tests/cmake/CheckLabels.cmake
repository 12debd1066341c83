# Lists every label in use with the number of tests it selects; fails when a
# label documented in tests/LABELS.md selects no test, or a test carries a
# label LABELS.md does not document.
#   cmake -DBUILD_DIR=<build> -DCTEST=<ctest> -DLABELS_DOC=<tests/LABELS.md>
#         [-DOPTIONAL_LABELS=system] -P CheckLabels.cmake
# OPTIONAL_LABELS may be empty (their tests are registered by an option).
cmake_minimum_required(VERSION 3.25)

file(STRINGS "${LABELS_DOC}" rows REGEX "^\\| `[a-z0-9-]+` \\|")
set(documented)
foreach(row IN LISTS rows)
  string(REGEX MATCH "^\\| `([a-z0-9-]+)`" _ "${row}")
  list(APPEND documented ${CMAKE_MATCH_1})
endforeach()
if(NOT documented)
  message(FATAL_ERROR "${LABELS_DOC} documents no label")
endif()

execute_process(COMMAND ${CTEST} --print-labels WORKING_DIRECTORY ${BUILD_DIR}
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ctest --print-labels failed in ${BUILD_DIR}")
endif()
string(REGEX MATCHALL "\n  [^\n]+" lines "${out}")
set(in_use)
foreach(line IN LISTS lines)
  string(STRIP "${line}" label)
  list(APPEND in_use "${label}")
endforeach()

set(problems "")
foreach(label IN LISTS in_use)
  if(NOT label IN_LIST documented)
    string(APPEND problems "label '${label}' is in use but not documented in tests/LABELS.md\n")
  endif()
endforeach()
foreach(label IN LISTS documented)
  execute_process(COMMAND ${CTEST} -N -L "^${label}$" WORKING_DIRECTORY ${BUILD_DIR}
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  string(REGEX MATCH "Total Tests: ([0-9]+)" _ "${out}")
  set(count "${CMAKE_MATCH_1}")
  message(STATUS "${label}: ${count} tests")
  if(NOT count OR count EQUAL 0)
    if(label IN_LIST OPTIONAL_LABELS)
      message(STATUS "${label}: none registered (optional)")
    else()
      string(APPEND problems "documented label '${label}' selects no test "
                             "(are all test targets built? `cmake --build build`)\n")
    endif()
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "${problems}")
endif()
