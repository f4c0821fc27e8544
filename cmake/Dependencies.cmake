# Finds everything RingKV builds against. CUDA, cuBLAS and NCCL are optional:
# without nvcc the whole product builds and runs on the CPU backend.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(MPI REQUIRED COMPONENTS CXX)
# CLI11 (header-only) parses the command line: it is on Debian and on the GPU machines, whose Boost
# has headers but no compiled libraries.
find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp)
if(NOT CLI11_INCLUDE_DIR)
  message(FATAL_ERROR "CLI11 not found: install libcli11-dev")
endif()
if(RINGKV_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND AND EXISTS /usr/src/googletest/CMakeLists.txt)
    # Some distributions ship GoogleTest as sources only: build them with the project.
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(/usr/src/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
    add_library(GTest::gtest_main ALIAS gtest_main)
  elseif(NOT GTest_FOUND)
    message(FATAL_ERROR "GoogleTest not found: install libgtest-dev or configure with -DRINGKV_BUILD_TESTS=OFF")
  endif()
endif()

# nlohmann-json (header-only) reads model configs and safetensors headers.
find_path(NLOHMANN_JSON_INCLUDE_DIR nlohmann/json.hpp)
if(NOT NLOHMANN_JSON_INCLUDE_DIR)
  message(FATAL_ERROR "nlohmann-json not found: install nlohmann-json3-dev")
endif()

set(RINGKV_HAVE_CUDA OFF)
if(RINGKV_WITH_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a)  # Hopper with its warpgroup tensor cores (wgmma)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no C++20 dialect flag for nvcc
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
    if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
      message(FATAL_ERROR "nvcc was found but NCCL was not: install NCCL or configure with -DRINGKV_WITH_CUDA=OFF")
    endif()
    set(RINGKV_HAVE_CUDA ON)
  endif()
endif()
message(STATUS "RingKV: CUDA backend ${RINGKV_HAVE_CUDA}, sanitizers ${RINGKV_SANITIZE}")

# Sanitizers apply to host C++ only; nvcc-compiled objects link into sanitized binaries unchanged.
if(RINGKV_SANITIZE)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=address,undefined)
endif()
