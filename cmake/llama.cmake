# llama.cpp for the llama engine and the model maker: the system's if it has a `llama` CMake package, else the
# build that scripts/llama-cpp.sh made from the pinned node-llama-cpp source in build/deps/llama.cpp.
# Defines the target infernet::llama (llama + ggml, with gguf.h and ggml-opt.h) and, when known,
# INFERNET_LLAMA_SERVER and INFERNET_LLAMA_BENCH (paths of llama-server and llama-bench for tests and benches).

set(INFERNET_LLAMA_DIR "${PROJECT_SOURCE_DIR}/build/deps/llama.cpp" CACHE PATH
    "Where scripts/llama-cpp.sh builds llama.cpp")
set(_llama_build "${INFERNET_LLAMA_DIR}/build")
set(_llama_src "${INFERNET_LLAMA_DIR}/src")

if(EXISTS "${_llama_build}/src/libllama.a")
  set(_ggml_libs ggml ggml-cpu ggml-base)
  if(EXISTS "${_llama_build}/ggml/src/ggml-cuda/libggml-cuda.a")
    find_package(CUDAToolkit REQUIRED)
    list(INSERT _ggml_libs 1 ggml-cuda)
  endif()
  add_library(infernet_llama INTERFACE)
  target_include_directories(infernet_llama SYSTEM INTERFACE "${_llama_src}/include" "${_llama_src}/ggml/include")
  target_link_libraries(infernet_llama INTERFACE "${_llama_build}/src/libllama.a")
  # Backends land in ggml/src or in a folder of their own, depending on the llama.cpp version.
  foreach(lib ${_ggml_libs})
    if(EXISTS "${_llama_build}/ggml/src/lib${lib}.a")
      target_link_libraries(infernet_llama INTERFACE "${_llama_build}/ggml/src/lib${lib}.a")
    else()
      target_link_libraries(infernet_llama INTERFACE "${_llama_build}/ggml/src/${lib}/lib${lib}.a")
    endif()
  endforeach()
  if(TARGET CUDA::cudart_static)
    target_link_libraries(infernet_llama INTERFACE CUDA::cudart_static CUDA::cublas_static CUDA::cublasLt_static
                                                   CUDA::cuda_driver)
  endif()
  find_package(OpenMP REQUIRED COMPONENTS CXX)
  target_link_libraries(infernet_llama INTERFACE OpenMP::OpenMP_CXX Threads::Threads ${CMAKE_DL_LIBS})
  set(INFERNET_LLAMA_SERVER "${_llama_build}/bin/llama-server")
  set(INFERNET_LLAMA_BENCH "${_llama_build}/bin/llama-bench")
  message(STATUS "llama.cpp: the build in ${INFERNET_LLAMA_DIR}")
else()
  find_package(llama CONFIG QUIET)
  if(NOT llama_FOUND)
    message(FATAL_ERROR "llama.cpp not found: run scripts/bootstrap.sh (it builds the pinned source into "
                        "build/deps/llama.cpp), or install llama.cpp where CMake finds it")
  endif()
  add_library(infernet_llama INTERFACE)
  target_link_libraries(infernet_llama INTERFACE llama ggml)
  find_program(INFERNET_LLAMA_SERVER llama-server)
  find_program(INFERNET_LLAMA_BENCH llama-bench)
  message(STATUS "llama.cpp: the system's (${llama_DIR})")
endif()
add_library(infernet::llama ALIAS infernet_llama)
