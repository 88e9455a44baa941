// AVX-512 kernels of the vision encoder's unmasked attention (head dim a multiple of 16): the two
// products of a block of query rows, S = Q Kᵀ and O = P V, with register tiles that keep the
// accumulators in zmm registers. OpenBLAS reaches ~half its large-GEMM rate on these shapes
// (K = 64 or N = 64); the softmax between them stays in libtorch.
#pragma once

#include <cstdint>

namespace smolvla::model {

// True when this CPU runs the kernels (AVX-512 F, BW and VL).
bool avx512_attention_available();

// scores (rows x n, contiguous) = q (rows x d, row stride q_stride) . kt (d x n, row stride
// kt_stride: pad it off multiples of 4 KB so the d rows do not alias in L1).
void attention_scores_avx512(const float* q, int64_t q_stride, const float* kt, int64_t kt_stride, int64_t rows,
                             int64_t n, int64_t d, float* scores);

// out (rows x d, row stride out_stride) = p (rows x n, contiguous) . v (n x d, contiguous).
void attention_values_avx512(const float* p, const float* v, int64_t rows, int64_t n, int64_t d, float* out,
                             int64_t out_stride);

// Row-wise softmax in place over `rows` rows of n contiguous values (unmasked scores).
void softmax_rows_avx512(float* scores, int64_t rows, int64_t n);

}  // namespace smolvla::model
