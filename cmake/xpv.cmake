# Tiny helpers so each folder's CMakeLists.txt declares its library, tests and benchmarks in a few lines.
include(GoogleTest)

# xpv_library(NAME SRCS a.cc b.cc DEPS other)
function(xpv_library name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()

# xpv_test(NAME SRCS a_test.cc DEPS lib): a GoogleTest binary registered with CTest.
function(xpv_test name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${A_SRCS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30)
endfunction()

# xpv_benchmark(NAME SRCS a_bench.cc DEPS lib): a Google Benchmark binary in build/bin.
function(xpv_benchmark name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${A_SRCS})
  target_link_libraries(${name} PRIVATE ${A_DEPS} benchmark::benchmark)
endfunction()

# xpv_fuzzer(NAME SRCS a_fuzz.cc DEPS lib): a libFuzzer target, built only with XPV_FUZZ=ON (clang).
function(xpv_fuzzer name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  if(NOT XPV_FUZZ)
    return()
  endif()
  add_executable(${name} ${A_SRCS})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${A_DEPS})
endfunction()
