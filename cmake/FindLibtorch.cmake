# Locate libtorch: $LIBTORCH, then a Python torch install, then the system.
# Sets Torch_DIR, TORCH_LIBRARIES, SMOLVLA_TORCH_SOURCE, SMOLVLA_TORCH_LIBDIR, SMOLVLA_TORCH_CUDA.
set(SMOLVLA_TORCH_SOURCE "")

if(DEFINED ENV{LIBTORCH} AND NOT "$ENV{LIBTORCH}" STREQUAL "")
  set(_libtorch "$ENV{LIBTORCH}")
  if(NOT EXISTS "${_libtorch}/share/cmake/Torch/TorchConfig.cmake")
    message(FATAL_ERROR "smolvla: LIBTORCH=${_libtorch} has no share/cmake/Torch/TorchConfig.cmake. "
      "Point LIBTORCH at an unpacked libtorch folder (the one holding lib/ and share/).")
  endif()
  set(Torch_DIR "${_libtorch}/share/cmake/Torch")
  set(SMOLVLA_TORCH_SOURCE "LIBTORCH environment variable")
endif()

if(SMOLVLA_TORCH_SOURCE STREQUAL "")
  foreach(_py $ENV{PYTHON} python3 /usr/bin/python3)
    find_program(_pyexe NAMES ${_py} NO_CACHE)
    if(_pyexe)
      execute_process(
        COMMAND ${_pyexe} -c "import torch, os; p = os.path.join(torch.utils.cmake_prefix_path, 'Torch'); print(p if os.path.exists(os.path.join(p, 'TorchConfig.cmake')) else '')"
        OUTPUT_VARIABLE _pytorch_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
      if(_rc EQUAL 0 AND NOT _pytorch_dir STREQUAL "")
        set(Torch_DIR "${_pytorch_dir}")
        set(SMOLVLA_TORCH_SOURCE "Python torch (${_pyexe})")
        break()
      endif()
    endif()
    unset(_pyexe)
  endforeach()
endif()

if(SMOLVLA_TORCH_SOURCE STREQUAL "")
  set(SMOLVLA_TORCH_SOURCE "system")
endif()

find_package(Torch QUIET)
if(NOT Torch_FOUND)
  message(FATAL_ERROR
    "smolvla: libtorch was not found (tried $LIBTORCH, a Python torch install, the system).\n"
    "  Debian/Ubuntu (CPU):  apt-get install libtorch-dev libopenblas0-pthread\n"
    "  Any platform:         download libtorch from pytorch.org, unzip it, export LIBTORCH=/path/to/libtorch\n"
    "  With pip torch:       pip install torch  (then rebuild; set PYTHON=/path/to/python if not python3)")
endif()

# libtorch's own flags (e.g. _GLIBCXX_USE_CXX11_ABI) must match ours.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
list(GET TORCH_LIBRARIES 0 _first_torch_lib)
if(TARGET torch)
  get_target_property(_torch_loc torch IMPORTED_LOCATION)
  if(NOT _torch_loc)
    get_target_property(_torch_loc torch IMPORTED_LOCATION_RELEASE)
  endif()
endif()
if(_torch_loc)
  get_filename_component(SMOLVLA_TORCH_LIBDIR "${_torch_loc}" DIRECTORY)
elseif(TORCH_LIBRARY)
  get_filename_component(SMOLVLA_TORCH_LIBDIR "${TORCH_LIBRARY}" DIRECTORY)
endif()
if(TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(SMOLVLA_TORCH_CUDA true)
else()
  set(SMOLVLA_TORCH_CUDA false)
endif()
message(STATUS "smolvla: using libtorch ${Torch_VERSION} from ${SMOLVLA_TORCH_SOURCE}: ${Torch_DIR} (libs in ${SMOLVLA_TORCH_LIBDIR}, CUDA ${SMOLVLA_TORCH_CUDA})")
