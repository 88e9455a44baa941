// AVX-512 kernels for the elementwise steps of the CPU inference path, each one pass over its data
// where libtorch runs several ops (each with its own temporaries, dtype conversions and set-up): the
// decode loop runs these 160 times a chunk on (50 x ~2000) rows, where the set-up outweighed the
// arithmetic. Arithmetic and rounding follow the libtorch ops they replace (float32 math, results
// rounded to the tensor's dtype where libtorch's intermediate tensors round); bfloat16 data travels
// as raw uint16 bits so this header needs no ATen.
#pragma once

#include <cstdint>

namespace smolvla::ops {

// True when this CPU runs the kernels below (AVX-512 F, BW and VL).
bool avx512_pointwise_available();

// out (rows x inter) = silu(gate) * up with gate_up (rows x 2·inter, contiguous) = [gate | up]: the
// gated MLP's activation. bfloat16: silu rounded to bfloat16 before the product, as two ops would.
void silu_mul_rows(const float* gate_up, int64_t rows, int64_t inter, float* out);
void silu_mul_rows(const uint16_t* gate_up, int64_t rows, int64_t inter, uint16_t* out);

// Rotary embedding of `tokens` tokens of `heads` heads of width d = 2·half each (token t's heads
// contiguous at x + t·token_stride) with token t's angle table (cos, sin: half float32 values each at
// t·half): out = [x1·c − x2·s, x2·c + x1·s] in float32, rounded to the element type; out contiguous.
void rope_rows(const float* x, int64_t token_stride, int64_t tokens, int64_t heads, int64_t half, const float* cos,
               const float* sin, float* out);
void rope_rows(const uint16_t* x, int64_t token_stride, int64_t tokens, int64_t heads, int64_t half, const float* cos,
               const float* sin, uint16_t* out);

// RMSNorm of `rows` contiguous rows of width d: normed = x / sqrt(mean(x²) + eps) in float32,
// rounded to the element type, then times the weight (d values), rounded again: libtorch's ops.
void rms_norm_rows(const float* x, const float* weight, int64_t rows, int64_t d, float eps, float* out);
void rms_norm_rows(const uint16_t* x, const uint16_t* weight, int64_t rows, int64_t d, float eps, uint16_t* out);

// LayerNorm of `rows` contiguous bfloat16 rows of width d with bfloat16 weight and bias: mean and
// variance (biased) in float32, (x − mean) · rsqrt(var + eps) · weight + bias in float32, rounded once.
void layer_norm_rows(const uint16_t* x, const uint16_t* weight, const uint16_t* bias, int64_t rows, int64_t d,
                     float eps, uint16_t* out);

// dst[i] = float(src[i]) · scale for n contiguous values (widening a head for the float32 kernels).
void widen_scaled(const float* src, int64_t n, float scale, float* dst);
void widen_scaled(const uint16_t* src, int64_t n, float scale, float* dst);

// dst[i] = src[i] rounded to the element type, n contiguous values (a head's float32 result).
void narrow_from(const float* src, int64_t n, float* dst);
void narrow_from(const float* src, int64_t n, uint16_t* dst);

}  // namespace smolvla::ops
