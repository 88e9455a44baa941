#include "model/attention_kernel.h"

#include "core/avx512_math.h"

#if SMOLVLA_HAS_AVX512_KERNELS

#include <cstring>
#include <limits>

namespace smolvla::model {

bool avx512_attention_available() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return ok;
}

using simd::exp_nonpositive;
using simd::tail_mask;

namespace {

// One tile of NR query rows x 32 keys with compile-time sizes, so the accumulators stay in registers.
template <int NR>
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline void scores_tile(const float* q, int64_t q_stride, const float* kt,
                                                                          int64_t kt_stride, int64_t d, __mmask16 m0,
                                                                          __mmask16 m1, float* dst, int64_t n) {
  __m512 acc[NR][2];
  for (int r = 0; r < NR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; ++k) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, kt + k * kt_stride);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, kt + k * kt_stride + 16);
    for (int r = 0; r < NR; ++r) {
      const __m512 a = _mm512_set1_ps(q[r * q_stride + k]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    _mm512_mask_storeu_ps(dst + r * n, m0, acc[r][0]);
    _mm512_mask_storeu_ps(dst + r * n + 16, m1, acc[r][1]);
  }
}

}  // namespace

// Tiles of 8 rows x 32 keys: per step of the inner dimension, 2 loads of kt, 8 broadcasts of q,
// 16 FMAs into 16 accumulators.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void attention_scores_avx512(const float* q, int64_t q_stride, const float* kt,
                                                                int64_t kt_stride, int64_t rows, int64_t n, int64_t d,
                                                                float* scores) {
  for (int64_t j0 = 0; j0 < n; j0 += 32) {
    const __mmask16 m0 = tail_mask(n - j0), m1 = tail_mask(n - j0 - 16 > 0 ? n - j0 - 16 : 0);
    int64_t r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) scores_tile<8>(q + r0 * q_stride, q_stride, kt + j0, kt_stride, d, m0, m1, scores + r0 * n + j0, n);
    for (; r0 < rows; ++r0) scores_tile<1>(q + r0 * q_stride, q_stride, kt + j0, kt_stride, d, m0, m1, scores + r0 * n + j0, n);
  }
}

namespace {

// One tile of NR rows x NV*16 columns with compile-time sizes, so the accumulators stay in registers.
template <int NR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline void values_tile(const float* p, int64_t p_stride, const float* v,
                                                                          int64_t v_stride, int64_t n, float* out,
                                                                          int64_t out_stride) {
  __m512 acc[NR][NV];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    __m512 b[NV];
    for (int c = 0; c < NV; ++c) b[c] = _mm512_loadu_ps(v + j * v_stride + 16 * c);
    for (int r = 0; r < NR; ++r) {
      const __m512 a = _mm512_set1_ps(p[r * p_stride + j]);
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(out + r * out_stride + 16 * c, acc[r][c]);
}

template <int NV>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void values_rows(const float* p, const float* v, int64_t rows, int64_t n, int64_t d,
                                                    int64_t c0, float* out, int64_t out_stride) {
  int64_t r0 = 0;
  for (; r0 + 4 <= rows; r0 += 4) values_tile<4, NV>(p + r0 * n, n, v + c0, d, n, out + r0 * out_stride + c0, out_stride);
  for (; r0 < rows; ++r0) values_tile<1, NV>(p + r0 * n, n, v + c0, d, n, out + r0 * out_stride + c0, out_stride);
}

}  // namespace

// Tiles of 4 rows x 64 columns (d is a multiple of 16): per key, 4 loads of v, 4 broadcasts of p,
// 16 FMAs into 16 accumulators.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void attention_values_avx512(const float* p, const float* v, int64_t rows, int64_t n,
                                                                int64_t d, float* out, int64_t out_stride) {
  int64_t c0 = 0;
  for (; c0 + 64 <= d; c0 += 64) values_rows<4>(p, v, rows, n, d, c0, out, out_stride);
  for (; c0 < d; c0 += 16) values_rows<1>(p, v, rows, n, d, c0, out, out_stride);
}


namespace {

// One row's softmax up to its normalisation: the maximum, exp(x - max) written back to the row;
// returns 1 / (their sum), the factor the caller scales the row by as it stores it.
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline float exp_row(float* row, int64_t n) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 mx = lowest;
  for (int64_t j = 0; j < n; j += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(lowest, tail_mask(n - j), row + j));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 k = tail_mask(n - j);
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), m));
    _mm512_mask_storeu_ps(row + j, k, e);
    sum = _mm512_mask_add_ps(sum, k, sum, e);
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512vl"))) void softmax_rows_avx512(float* scores, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = scores + r * n;
    const __m512 inv = _mm512_set1_ps(exp_row(row, n));
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 k = tail_mask(n - j);
      _mm512_mask_storeu_ps(row + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + j), inv));
    }
  }
}


bool avx512_bf16_attention_available() {
  static const bool ok = avx512_attention_available() && __builtin_cpu_supports("avx512bf16");
  return ok;
}

namespace {

#define BF16_KERNEL __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define BF16_INLINE __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"), always_inline)) inline

// A pair of bfloat16 values as one 32-bit word (the low half is the first), for a broadcast.
BF16_INLINE __m512i pair_at(const uint16_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return _mm512_set1_epi32(static_cast<int>(w));
}

BF16_INLINE __m512 dot_pairs(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(a), reinterpret_cast<__m512bh&>(b));
}

// NR query rows x 32 keys: per pair of the head width, 2 loads of key pairs, NR broadcasts of query
// pairs, 2·NR dot-pair instructions into 2·NR accumulators.
template <int NR>
BF16_INLINE void scores_tile_bf16(const uint16_t* q, int64_t q_stride, const uint32_t* kpairs, int64_t kp_stride,
                                  int64_t pairs, __mmask16 m0, __mmask16 m1, float scale, float* dst, int64_t n) {
  __m512 acc[NR][2];
  for (int r = 0; r < NR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t c = 0; c < pairs; ++c) {
    const __m512i b0 = _mm512_maskz_loadu_epi32(m0, kpairs + c * kp_stride);
    const __m512i b1 = _mm512_maskz_loadu_epi32(m1, kpairs + c * kp_stride + 16);
    for (int r = 0; r < NR; ++r) {
      const __m512i a = pair_at(q + r * q_stride + 2 * c);
      acc[r][0] = dot_pairs(acc[r][0], a, b0);
      acc[r][1] = dot_pairs(acc[r][1], a, b1);
    }
  }
  const __m512 s = _mm512_set1_ps(scale);
  for (int r = 0; r < NR; ++r) {
    _mm512_mask_storeu_ps(dst + r * n, m0, _mm512_mul_ps(acc[r][0], s));
    _mm512_mask_storeu_ps(dst + r * n + 16, m1, _mm512_mul_ps(acc[r][1], s));
  }
}

// NR rows x NV·16 columns: per pair of keys, NV loads of value pairs, NR broadcasts of probability
// pairs, NR·NV dot-pair instructions.
template <int NR, int NV>
BF16_INLINE void values_tile_bf16(const uint16_t* p, int64_t p_stride, const uint32_t* vpairs, int64_t d, int64_t pairs,
                                  uint16_t* out, int64_t out_stride) {
  __m512 acc[NR][NV];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < pairs; ++j) {
    __m512i b[NV];
    for (int c = 0; c < NV; ++c) b[c] = _mm512_loadu_si512(vpairs + j * d + 16 * c);
    for (int r = 0; r < NR; ++r) {
      const __m512i a = pair_at(p + r * p_stride + 2 * j);
      for (int c = 0; c < NV; ++c) acc[r][c] = dot_pairs(acc[r][c], a, b[c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NV; ++c) simd::store_bf16(out + r * out_stride + 16 * c, 0xFFFF, acc[r][c]);
}

template <int NV>
BF16_KERNEL void values_rows_bf16(const uint16_t* p, const uint32_t* vpairs, int64_t rows, int64_t n2, int64_t d, int64_t c0,
                                  uint16_t* out, int64_t out_stride) {
  int64_t r0 = 0;
  for (; r0 + 4 <= rows; r0 += 4) values_tile_bf16<4, NV>(p + r0 * n2, n2, vpairs + c0, d, n2 / 2, out + r0 * out_stride + c0, out_stride);
  for (; r0 < rows; ++r0) values_tile_bf16<1, NV>(p + r0 * n2, n2, vpairs + c0, d, n2 / 2, out + r0 * out_stride + c0, out_stride);
}

}  // namespace

BF16_KERNEL void attention_scores_bf16(const uint16_t* q, int64_t q_stride, const uint32_t* kpairs, int64_t kp_stride,
                                       int64_t rows, int64_t n, int64_t d, float scale, float* scores) {
  for (int64_t j0 = 0; j0 < n; j0 += 32) {
    const __mmask16 m0 = tail_mask(n - j0), m1 = tail_mask(n - j0 - 16 > 0 ? n - j0 - 16 : 0);
    int64_t r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8)
      scores_tile_bf16<8>(q + r0 * q_stride, q_stride, kpairs + j0, kp_stride, d / 2, m0, m1, scale, scores + r0 * n + j0, n);
    for (; r0 < rows; ++r0)
      scores_tile_bf16<1>(q + r0 * q_stride, q_stride, kpairs + j0, kp_stride, d / 2, m0, m1, scale, scores + r0 * n + j0, n);
  }
}

BF16_KERNEL void attention_values_bf16(const uint16_t* p, const uint32_t* vpairs, int64_t rows, int64_t n2, int64_t d,
                                       uint16_t* out, int64_t out_stride) {
  int64_t c0 = 0;
  for (; c0 + 64 <= d; c0 += 64) values_rows_bf16<4>(p, vpairs, rows, n2, d, c0, out, out_stride);
  for (; c0 < d; c0 += 16) values_rows_bf16<1>(p, vpairs, rows, n2, d, c0, out, out_stride);
}

BF16_KERNEL void softmax_rows_to_bf16(float* scores, int64_t rows, int64_t n, uint16_t* out, int64_t n2) {
  for (int64_t r = 0; r < rows; ++r) {
    uint16_t* o = out + r * n2;
    float* row = scores + r * n;
    const __m512 inv = _mm512_set1_ps(exp_row(row, n));
    // VCVTNEPS2BF16 rounds to nearest-even as c10::BFloat16 does (subnormal weights below 1e-38 become 0).
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 k = tail_mask(n - j);
      const __m256bh w = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + j), inv));
      _mm256_mask_storeu_epi16(o + j, k, reinterpret_cast<const __m256i&>(w));
    }
    for (int64_t j = n; j < n2; ++j) o[j] = 0;
  }
}

#undef BF16_INLINE
#undef BF16_KERNEL

}  // namespace smolvla::model

#else  // other architectures and compilers: the libtorch path is used (never called)

namespace smolvla::model {

bool avx512_attention_available() { return false; }
void attention_scores_avx512(const float*, int64_t, const float*, int64_t, int64_t, int64_t, int64_t, float*) {}
void attention_values_avx512(const float*, const float*, int64_t, int64_t, int64_t, float*, int64_t) {}
void softmax_rows_avx512(float*, int64_t, int64_t) {}
bool avx512_bf16_attention_available() { return false; }
void attention_scores_bf16(const uint16_t*, int64_t, const uint32_t*, int64_t, int64_t, int64_t, int64_t, float, float*) {}
void attention_values_bf16(const uint16_t*, const uint32_t*, int64_t, int64_t, int64_t, uint16_t*, int64_t) {}
void softmax_rows_to_bf16(float*, int64_t, int64_t, uint16_t*, int64_t) {}

}  // namespace smolvla::model

#endif
