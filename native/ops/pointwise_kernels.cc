#include "ops/pointwise_kernels.h"

#include "core/avx512_math.h"
#include "core/task_threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if SMOLVLA_HAS_AVX512_KERNELS

namespace smolvla::ops {

bool avx512_pointwise_available() {
  // SMOLVLA_POINTWISE=aten keeps libtorch's ops (an escape hatch, and how the tests compare the two).
  static const bool ok = [] {
    const char* e = std::getenv("SMOLVLA_POINTWISE");
    if (e != nullptr && std::strcmp(e, "aten") == 0) return false;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }();
  return ok;
}

namespace {

#define KERNEL __attribute__((target("avx512f,avx512bw,avx512vl")))

// silu(g) = g · sigmoid(g), sigmoid from e = exp(−|g|) so the exponent never overflows:
// 1 / (1 + e) for g >= 0, e / (1 + e) below.
template <typename T>
KERNEL void silu_mul_impl(const T* gate_up, int64_t rows, int64_t inter, T* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = gate_up + r * 2 * inter;
    const T* u = g + inter;
    T* o = out + r * inter;
    for (int64_t j = 0; j < inter; j += 16) {
      const __mmask16 m = simd::tail_mask(inter - j);
      const __m512 x = simd::load(g + j, m);
      const __m512 e = simd::exp_nonpositive(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
      const __m512 denominator = _mm512_add_ps(one, e);
      const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
      const __m512 sigmoid = _mm512_div_ps(_mm512_mask_mov_ps(one, negative, e), denominator);
      const __m512 silu = simd::round_to(o, _mm512_mul_ps(x, sigmoid));
      simd::store(o + j, m, _mm512_mul_ps(silu, simd::load(u + j, m)));
    }
  }
}

template <typename T>
KERNEL void rope_impl(const T* x, int64_t token_stride, int64_t tokens, int64_t heads, int64_t half, const float* cos,
                      const float* sin, T* out) {
  const int64_t d = 2 * half;
  for (int64_t t = 0; t < tokens; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t h = 0; h < heads; ++h) {
      const T* xr = x + t * token_stride + h * d;
      T* o = out + (t * heads + h) * d;
      for (int64_t j = 0; j < half; j += 16) {
        const __mmask16 m = simd::tail_mask(half - j);
        const __m512 x1 = simd::load(xr + j, m), x2 = simd::load(xr + half + j, m);
        const __m512 cj = _mm512_maskz_loadu_ps(m, c + j), sj = _mm512_maskz_loadu_ps(m, s + j);
        // Products rounded before the sum, as libtorch's separate mul and sub/add ops (no FMA).
        simd::store(o + j, m, _mm512_sub_ps(_mm512_mul_ps(x1, cj), _mm512_mul_ps(x2, sj)));
        simd::store(o + half + j, m, _mm512_add_ps(_mm512_mul_ps(x2, cj), _mm512_mul_ps(x1, sj)));
      }
    }
  }
}

template <typename T>
KERNEL void rms_norm_impl(const T* x, const T* weight, int64_t rows, int64_t d, float eps, T* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    T* o = out + r * d;
    __m512 ss = _mm512_setzero_ps();
    for (int64_t j = 0; j < d; j += 16) {
      const __m512 v = simd::load(xr + j, simd::tail_mask(d - j));
      ss = _mm512_fmadd_ps(v, v, ss);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(ss) / static_cast<float>(d) + eps));
    for (int64_t j = 0; j < d; j += 16) {
      const __mmask16 m = simd::tail_mask(d - j);
      const __m512 normed = simd::round_to(o, _mm512_mul_ps(simd::load(xr + j, m), inv));
      simd::store(o + j, m, _mm512_mul_ps(simd::load(weight + j, m), normed));
    }
  }
}

// Two passes over the row for the statistics (a mean first, then squared deviations: no
// cancellation), a third for the output.
KERNEL void layer_norm_impl(const uint16_t* x, const uint16_t* weight, const uint16_t* bias, int64_t rows, int64_t d,
                            float eps, uint16_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* xr = x + r * d;
    uint16_t* o = out + r * d;
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < d; j += 16) sum = _mm512_add_ps(sum, simd::load(xr + j, simd::tail_mask(d - j)));
    const float mean_value = _mm512_reduce_add_ps(sum) / static_cast<float>(d);
    const __m512 mean = _mm512_set1_ps(mean_value);
    __m512 ss = _mm512_setzero_ps();
    for (int64_t j = 0; j < d; j += 16) {
      const __mmask16 m = simd::tail_mask(d - j);
      const __m512 c = _mm512_maskz_sub_ps(m, simd::load(xr + j, m), mean);
      ss = _mm512_fmadd_ps(c, c, ss);
    }
    const __m512 rstd = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(ss) / static_cast<float>(d) + eps));
    for (int64_t j = 0; j < d; j += 16) {
      const __mmask16 m = simd::tail_mask(d - j);
      const __m512 normed = _mm512_mul_ps(_mm512_sub_ps(simd::load(xr + j, m), mean), rstd);
      simd::store(o + j, m, _mm512_fmadd_ps(normed, simd::load(weight + j, m), simd::load(bias + j, m)));
    }
  }
}

template <typename T>
KERNEL void widen_scaled_impl(const T* src, int64_t n, float scale, float* dst) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = simd::tail_mask(n - i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(simd::load(src + i, m), s));
  }
}

template <typename T>
KERNEL void narrow_from_impl(const float* src, int64_t n, T* dst) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = simd::tail_mask(n - i);
    simd::store(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
  }
}

#undef KERNEL

// Calls of at least this many values split their rows over the compute thread's team: waking its
// spinning helper costs a few µs, the decode loop's 50 x 2048 SiLU·up ~40 µs on one core (measured:
// while these ran on one core the other spun, ~8 % of the decode loop).
constexpr int64_t kThreadedValues = 16384;

template <typename F>
void split_rows(int64_t rows, int64_t values_per_row, const F& f) {
  const int threads = rows >= 2 && rows * values_per_row >= kThreadedValues ? at::get_num_threads() : 1;
  if (threads <= 1) {
    f(0, rows);
    return;
  }
  const int64_t share = (rows + threads - 1) / threads;
  run_tasks(threads, threads, [&](int64_t part) {
    const int64_t r0 = part * share;
    if (r0 < rows) f(r0, std::min(share, rows - r0));
  });
}

template <typename T>
void silu_mul_split(const T* gate_up, int64_t rows, int64_t inter, T* out) {
  split_rows(rows, 2 * inter, [&](int64_t r0, int64_t n) { silu_mul_impl(gate_up + r0 * 2 * inter, n, inter, out + r0 * inter); });
}

template <typename T>
void rope_split(const T* x, int64_t token_stride, int64_t tokens, int64_t heads, int64_t half, const float* cos,
                const float* sin, T* out) {
  split_rows(tokens, 2 * heads * half, [&](int64_t t0, int64_t n) {
    rope_impl(x + t0 * token_stride, token_stride, n, heads, half, cos + t0 * half, sin + t0 * half, out + t0 * heads * 2 * half);
  });
}

template <typename T>
void rms_norm_split(const T* x, const T* weight, int64_t rows, int64_t d, float eps, T* out) {
  split_rows(rows, d, [&](int64_t r0, int64_t n) { rms_norm_impl(x + r0 * d, weight, n, d, eps, out + r0 * d); });
}

}  // namespace

void silu_mul_rows(const float* gate_up, int64_t rows, int64_t inter, float* out) { silu_mul_split(gate_up, rows, inter, out); }
void silu_mul_rows(const uint16_t* gate_up, int64_t rows, int64_t inter, uint16_t* out) {
  silu_mul_split(gate_up, rows, inter, out);
}
void rope_rows(const float* x, int64_t token_stride, int64_t tokens, int64_t heads, int64_t half, const float* cos,
               const float* sin, float* out) {
  rope_split(x, token_stride, tokens, heads, half, cos, sin, out);
}
void rope_rows(const uint16_t* x, int64_t token_stride, int64_t tokens, int64_t heads, int64_t half, const float* cos,
               const float* sin, uint16_t* out) {
  rope_split(x, token_stride, tokens, heads, half, cos, sin, out);
}

void rms_norm_rows(const float* x, const float* weight, int64_t rows, int64_t d, float eps, float* out) {
  rms_norm_split(x, weight, rows, d, eps, out);
}
void rms_norm_rows(const uint16_t* x, const uint16_t* weight, int64_t rows, int64_t d, float eps, uint16_t* out) {
  rms_norm_split(x, weight, rows, d, eps, out);
}
void layer_norm_rows(const uint16_t* x, const uint16_t* weight, const uint16_t* bias, int64_t rows, int64_t d,
                     float eps, uint16_t* out) {
  split_rows(rows, d, [&](int64_t r0, int64_t n) { layer_norm_impl(x + r0 * d, weight, bias, n, d, eps, out + r0 * d); });
}
void widen_scaled(const float* src, int64_t n, float scale, float* dst) { widen_scaled_impl(src, n, scale, dst); }
void widen_scaled(const uint16_t* src, int64_t n, float scale, float* dst) { widen_scaled_impl(src, n, scale, dst); }
void narrow_from(const float* src, int64_t n, float* dst) { narrow_from_impl(src, n, dst); }
void narrow_from(const float* src, int64_t n, uint16_t* dst) { narrow_from_impl(src, n, dst); }

}  // namespace smolvla::ops

#else  // other architectures: the libtorch ops run instead (never called)

namespace smolvla::ops {

bool avx512_pointwise_available() { return false; }
void silu_mul_rows(const float*, int64_t, int64_t, float*) {}
void silu_mul_rows(const uint16_t*, int64_t, int64_t, uint16_t*) {}
void rope_rows(const float*, int64_t, int64_t, int64_t, int64_t, const float*, const float*, float*) {}
void rope_rows(const uint16_t*, int64_t, int64_t, int64_t, int64_t, const float*, const float*, uint16_t*) {}
void rms_norm_rows(const float*, const float*, int64_t, int64_t, float, float*) {}
void rms_norm_rows(const uint16_t*, const uint16_t*, int64_t, int64_t, float, uint16_t*) {}
void layer_norm_rows(const uint16_t*, const uint16_t*, const uint16_t*, int64_t, int64_t, float, uint16_t*) {}
void widen_scaled(const float*, int64_t, float, float*) {}
void widen_scaled(const uint16_t*, int64_t, float, float*) {}
void narrow_from(const float*, int64_t, float*) {}
void narrow_from(const float*, int64_t, uint16_t*) {}

}  // namespace smolvla::ops

#endif
