// Exception types the N-API layer maps to error codes (napi/errors.cc); libtorch-free.
#pragma once

#include <stdexcept>

namespace smolvla {

// A file that is missing, not a regular file, unreadable or malformed (ERR_SMOLVLA_IO).
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// NaN or infinity where finite numbers are required, e.g. in checkpoint weights
// (ERR_SMOLVLA_NOT_FINITE).
struct NotFiniteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace smolvla
