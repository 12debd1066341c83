# How every test gets its labels and properties: one helper for Google Test
# executables and one for plain commands. Use them instead of
# gtest_discover_tests / add_test + set_tests_properties.
#
# Why not gtest_discover_tests(... PROPERTIES LABELS "a;b")? CMake 3.25
# writes those properties into the discovered-tests file unquoted, so a list
# such as "root;pull" becomes LABELS root plus a property named "pull": the
# labels after the first are lost and `ctest -L pull` selects nothing. Here
# the properties are set by a small script ctest includes after the
# discovered tests, which keeps lists intact.
#
# Every label used is recorded; tests/LABELS.md documents each one and the
# test labels.EveryDocumentedLabelSelectsATest holds the two together.

# ferry_add_gtest(<target> LABELS <label>... [RESOURCE_LOCK <name>...]
#                 [TIMEOUT <seconds>] [DISCOVERY_TIMEOUT <seconds>])
function(ferry_add_gtest target)
  cmake_parse_arguments(arg "" "TIMEOUT;DISCOVERY_TIMEOUT" "LABELS;RESOURCE_LOCK" ${ARGN})
  if(NOT arg_LABELS OR arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ferry_add_gtest(${target}): needs LABELS (got: ${ARGN})")
  endif()
  if(NOT arg_DISCOVERY_TIMEOUT)
    set(arg_DISCOVERY_TIMEOUT 30)
  endif()
  string(MAKE_C_IDENTIFIER "ferry_tests_${target}" list_var)
  gtest_discover_tests(${target} TEST_LIST ${list_var} DISCOVERY_TIMEOUT ${arg_DISCOVERY_TIMEOUT})
  set(props "LABELS [==[${arg_LABELS}]==]")
  if(arg_RESOURCE_LOCK)
    string(APPEND props " RESOURCE_LOCK [==[${arg_RESOURCE_LOCK}]==]")
  endif()
  if(arg_TIMEOUT)
    string(APPEND props " TIMEOUT ${arg_TIMEOUT}")
  endif()
  set(script ${CMAKE_CURRENT_BINARY_DIR}/${target}-properties.cmake)
  file(WRITE ${script}
       "# Written by ferry_add_gtest (tests/cmake/FerryTesting.cmake).\n"
       "if(DEFINED ${list_var})\n"
       "  set_tests_properties(\${${list_var}} PROPERTIES ${props})\n"
       "endif()\n")
  # Appended after gtest_discover_tests' own include file, so it runs after it.
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${script})
  set_property(GLOBAL APPEND PROPERTY FERRY_TEST_LABELS ${arg_LABELS})
endfunction()

# ferry_add_test(NAME <name> COMMAND <command>... LABELS <label>...
#                [TIMEOUT <seconds>] [RUN_SERIAL] [WORKING_DIRECTORY <dir>])
function(ferry_add_test)
  cmake_parse_arguments(arg "RUN_SERIAL" "NAME;TIMEOUT;WORKING_DIRECTORY" "COMMAND;LABELS" ${ARGN})
  if(NOT arg_NAME OR NOT arg_COMMAND OR NOT arg_LABELS OR arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ferry_add_test: needs NAME, COMMAND and LABELS (got: ${ARGN})")
  endif()
  if(arg_WORKING_DIRECTORY)
    add_test(NAME ${arg_NAME} COMMAND ${arg_COMMAND} WORKING_DIRECTORY ${arg_WORKING_DIRECTORY})
  else()
    add_test(NAME ${arg_NAME} COMMAND ${arg_COMMAND})
  endif()
  set_tests_properties(${arg_NAME} PROPERTIES LABELS "${arg_LABELS}")
  if(arg_TIMEOUT)
    set_tests_properties(${arg_NAME} PROPERTIES TIMEOUT ${arg_TIMEOUT})
  endif()
  if(arg_RUN_SERIAL)
    set_tests_properties(${arg_NAME} PROPERTIES RUN_SERIAL TRUE)
  endif()
  set_property(GLOBAL APPEND PROPERTY FERRY_TEST_LABELS ${arg_LABELS})
endfunction()
