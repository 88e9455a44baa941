// Inline AVX-512 building blocks shared by the CPU kernels (attention, RoPE, SiLU·up): masks for
// row tails, exp of non-positive lanes, and bfloat16 <-> float32 lanes with the rounding libtorch
// uses. Every function carries its own target attribute, so the files that include this header
// build without -mavx512f and call the kernels only where the CPU has them (checked at run time).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SMOLVLA_HAS_AVX512_KERNELS 1
#include <immintrin.h>

// GCC 12 reports the masked loads' deliberately undefined pass-through lanes (_mm512_undefined_ps
// inside the intrinsics) as maybe-uninitialised in every kernel file that inlines them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstdint>

namespace smolvla::simd {

#define SMOLVLA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline

// Lanes [0, remaining) of a 16-lane vector.
SMOLVLA_AVX512 __mmask16 tail_mask(int64_t remaining) {
  return remaining >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << remaining) - 1u);
}

// exp(x) for float32 lanes, x <= 0 (softmax after subtracting the row maximum, sigmoid of -|x|):
// x = n·ln2 + r with |r| <= ln2/2, e^r by Cephes' degree-6 polynomial (about 1 ulp), 2^n applied by
// scalef. Inputs below -87.3 give ~1e-38 instead of underflowing further: nothing next to a sum >= 1.
SMOLVLA_AVX512 __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// 16 bfloat16 values (raw uint16 bits) widened to float32: the bits are the float's high half.
SMOLVLA_AVX512 __m512 load_bf16(const uint16_t* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// float32 lanes rounded to bfloat16 to nearest-even, as c10::BFloat16's constructor (NaN stays NaN).
SMOLVLA_AVX512 void store_bf16(uint16_t* p, __mmask16 m, __m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_set1_epi32(0x7FC0));
  _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(rounded));
}

// Loads and stores for either element type, so one kernel template serves float32 and bfloat16.
SMOLVLA_AVX512 __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
SMOLVLA_AVX512 __m512 load(const uint16_t* p, __mmask16 m) { return load_bf16(p, m); }
SMOLVLA_AVX512 void store(float* p, __mmask16 m, __m512 x) { _mm512_mask_storeu_ps(p, m, x); }
SMOLVLA_AVX512 void store(uint16_t* p, __mmask16 m, __m512 x) { store_bf16(p, m, x); }

// The value a float32 result has after a round trip through the element type (the rounding an
// intermediate bfloat16 tensor applies between two libtorch ops).
SMOLVLA_AVX512 __m512 round_to(float*, __m512 x) { return x; }
SMOLVLA_AVX512 __m512 round_to(uint16_t*, __m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_and_si512(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))),
                                     _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)));
  return _mm512_mask_mov_ps(_mm512_castsi512_ps(r), _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

#undef SMOLVLA_AVX512

}  // namespace smolvla::simd

#endif
