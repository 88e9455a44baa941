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

// True when this CPU also has AVX-512 BF16 (the bfloat16 kernels below).
bool avx512_bf16_attention_available();

// The bfloat16 products for one head (head width d even), float32 accumulation by VDPBF16PS, which
// multiplies pairs of bfloat16 values: the operands are laid out so each 32-bit word holds a pair.
//   kpairs (d/2 x kp_stride words): kpairs[c][j] = (k[j][2c], k[j][2c+1]), i.e. k's rows read as
//     32-bit words and transposed (pad kp_stride off multiples of 1 KB words).
//   scores (rows x n, contiguous, float32) = scale · q (rows x d bfloat16, row stride q_stride) . kᵀ
void attention_scores_bf16(const uint16_t* q, int64_t q_stride, const uint32_t* kpairs, int64_t kp_stride, int64_t rows,
                           int64_t n, int64_t d, float scale, float* scores);
//   vpairs (ceil(n/2) x d words): vpairs[j][c] = (v[2j][c], v[2j+1][c]) (a zero past the last key).
//   p (rows x n2 bfloat16, n2 = n rounded up to even, the pad zero): the softmax rounded to bfloat16.
//   out (rows x d bfloat16, row stride out_stride) = p . v, rounded once from float32.
void attention_values_bf16(const uint16_t* p, const uint32_t* vpairs, int64_t rows, int64_t n2, int64_t d, uint16_t* out,
                           int64_t out_stride);

// Row-wise softmax of `rows` rows of n contiguous float32 scores (overwritten with their
// exponentials), written as bfloat16 rows of n2 >= n values (a zero in the pad): the attention
// weights of the bfloat16 kernels, normalised in float32 and rounded once.
void softmax_rows_to_bf16(float* scores, int64_t rows, int64_t n, uint16_t* out, int64_t n2);

// Row-wise softmax in place over `rows` rows of n contiguous values (unmasked scores).
void softmax_rows_avx512(float* scores, int64_t rows, int64_t n);

}  // namespace smolvla::model
