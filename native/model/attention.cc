#include "model/attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "core/blas_threads.h"
#include "core/task_threads.h"
#include "core/torch_compat.h"
#include "model/attention_kernel.h"
#include "ops/pointwise_kernels.h"

namespace smolvla::model {

AttentionMask AttentionMask::from(const at::Tensor& mask) {
  AttentionMask m;
  m.rows = mask.size(1);
  m.cols = mask.size(2);
  m.blocked = mask.logical_not().view({mask.size(0), 1, 1, m.rows, m.cols});
  return m;
}

#if SMOLVLA_HAS_SDPA
namespace {

// GPUs: libtorch's fused attention on (B, H, L, d) heads. Blocked entries get the dtype's lowest
// value added (not a boolean mask): a fully blocked row then stays a uniform softmax as in the math
// path, where a boolean mask would give NaN that then spreads through the cache.
at::Tensor fused_grouped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask) {
  const int64_t b = q.size(0), lq = q.size(1), heads = q.size(2), d = q.size(3), groups = heads / k.size(2);
  const at::Tensor qh = q.transpose(1, 2);
  const at::Tensor kh = k.transpose(1, 2).repeat_interleave(groups, 1);  // query head h reads kv head h / G
  const at::Tensor vh = v.transpose(1, 2).to(q.scalar_type()).repeat_interleave(groups, 1);
  const double lowest = q.scalar_type() == at::kHalf       ? static_cast<double>(std::numeric_limits<c10::Half>::lowest())
                        : q.scalar_type() == at::kBFloat16 ? static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest())
                                                           : static_cast<double>(std::numeric_limits<float>::lowest());
  const at::Tensor bias = at::zeros({b, 1, mask.rows, mask.cols}, q.options())
                              .masked_fill_(mask.blocked.view({b, 1, mask.rows, mask.cols}), lowest);
  const at::Tensor out = at::scaled_dot_product_attention(qh, kh.to(q.scalar_type()), vh, bias, 0.0, false);
  return out.transpose(1, 2).reshape({b, lq, heads * d});
}

}  // namespace
#endif

namespace {

bool kernel_enabled();

// Below this many multiply-adds a call runs on one thread: starting a helper costs more.
constexpr int64_t kThreadedMacs = int64_t{1} << 22;

// The CPU inference path of grouped_attention through the AVX-512 kernels (float32; bfloat16
// widened): per query head, scores against its kv head's keys, blocked entries set to the float32
// minimum, softmax, values written straight into the (B, Lq, H*d) result. The decode loop calls this
// 160 times a chunk on (50 x ~160) scores, where libtorch's dozen ops per call (widening, scaling,
// transposing, narrowing back) cost more than the arithmetic: here each task (a kv head and a share
// of the query rows, see kernel_attention_heads) reads q, k and v in place, whatever their strides
// and dtype, and writes its rows of the result in q's dtype. q is scaled before the product
// (libtorch's path scales the scores): equal up to rounding.

// Lays out one head's keys and values (rows of d bfloat16 values, `*_row_stride` apart) as the
// bfloat16 kernels read them (model/attention_kernel.h): kpairs[c][j] = (k[j][2c], k[j][2c+1]) with
// rows kp_stride words apart, vpairs[j][c] = (v[2j][c], v[2j+1][c]) with a zero past the last key.
void pair_head(const uint16_t* k, int64_t k_row_stride, const uint16_t* v, int64_t v_row_stride, int64_t lk, int64_t d,
               int64_t kp_stride, uint32_t* kpairs, uint32_t* vpairs) {
  for (int64_t j = 0; j < lk; ++j) {
    const uint16_t* kr = k + j * k_row_stride;
    for (int64_t c = 0; c < d / 2; ++c) kpairs[c * kp_stride + j] = kr[2 * c] | (static_cast<uint32_t>(kr[2 * c + 1]) << 16);
  }
  for (int64_t j = 0; 2 * j < lk; ++j) {
    const uint16_t* lo = v + 2 * j * v_row_stride;
    uint32_t* dst = vpairs + j * d;
    if (2 * j + 1 < lk) {
      const uint16_t* hi = lo + v_row_stride;
      for (int64_t c = 0; c < d; ++c) dst[c] = lo[c] | (static_cast<uint32_t>(hi[c]) << 16);
    } else {
      for (int64_t c = 0; c < d; ++c) dst[c] = lo[c];
    }
  }
}

// The grouped kernels' tasks: one kv head with its group of query heads (its keys and values laid
// out once), for a share of the query rows (kv heads alone, 5 in SmolVLM, would leave a core idle
// part of the time); both cores from kThreadedMacs multiply-adds. fn(s, kv, i0, rows) per task.
template <typename Fn>
void run_grouped_tasks(const at::Tensor& q, const at::Tensor& k, const Fn& fn) {
  const int64_t b = q.size(0), lq = q.size(1), heads = q.size(2), d = q.size(3);
  const int64_t lk = k.size(1), kv_heads = k.size(2);
  const int64_t macs = 2 * b * heads * lq * lk * d;
  const int threads = macs < kThreadedMacs ? 1 : at::get_num_threads();
  const int64_t parts = threads > 1 && lq >= 16 ? threads : 1;
  const int64_t part_rows = (lq + parts - 1) / parts;
  run_tasks(b * kv_heads * parts, threads, [&](int64_t task) {
    const int64_t s = task / (kv_heads * parts), kv = (task / parts) % kv_heads, part = task % parts;
    const int64_t i0 = part * part_rows, rows = std::min(part_rows, lq - i0);
    if (rows > 0) fn(s, kv, i0, rows);
  });
}

// bfloat16 data as the raw bits the pointwise kernels take.
inline const float* raw(const float* p) { return p; }
inline float* raw(float* p) { return p; }
inline const uint16_t* raw(const at::BFloat16* p) { return reinterpret_cast<const uint16_t*>(p); }
inline uint16_t* raw(at::BFloat16* p) { return reinterpret_cast<uint16_t*>(p); }

template <typename T>
void kernel_attention_heads(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const bool* blocked,
                            at::Tensor& out) {
  const int64_t lq = q.size(1), heads = q.size(2), d = q.size(3);
  const int64_t lk = k.size(1), kv_heads = k.size(2), groups = heads / kv_heads;
  const auto scale = static_cast<float>(std::pow(static_cast<double>(d), -0.5));
  const int64_t kt_stride = lk + 16;  // off multiples of 4 KB, so the d rows of kt do not alias in L1
  const T* qp = q.data_ptr<T>();
  const T* kp = k.data_ptr<T>();
  const T* vp = v.data_ptr<T>();
  T* op = out.data_ptr<T>();
  const auto qs = q.strides(), ks = k.strides(), vs = v.strides();
  const bool rows_contiguous = qs[3] == 1 && vs[3] == 1;
  run_grouped_tasks(q, k, [&](int64_t s, int64_t kv, int64_t i0, int64_t rows) {
    thread_local std::vector<float> buffer;
    const int64_t need = d * kt_stride + lk * d + rows * d + rows * lk + rows * d;
    if (static_cast<int64_t>(buffer.size()) < need) buffer.resize(static_cast<size_t>(need));
    float* kt = buffer.data();
    float* vf = kt + d * kt_stride;
    float* qf = vf + lk * d;
    float* sc = qf + rows * d;
    float* of = sc + rows * lk;
    for (int64_t j = 0; j < lk; ++j) {
      const T* krow = kp + s * ks[0] + j * ks[1] + kv * ks[2];
      const T* vrow = vp + s * vs[0] + j * vs[1] + kv * vs[2];
      for (int64_t c = 0; c < d; ++c) kt[c * kt_stride + j] = static_cast<float>(krow[c * ks[3]]);
      if (rows_contiguous) {
        ops::widen_scaled(raw(vrow), d, 1.0f, vf + j * d);
      } else {
        for (int64_t c = 0; c < d; ++c) vf[j * d + c] = static_cast<float>(vrow[c * vs[3]]);
      }
    }
    const bool* m = blocked + (s * lq + i0) * lk;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t h = kv * groups + g;
      for (int64_t i = 0; i < rows; ++i) {
        const T* row = qp + s * qs[0] + (i0 + i) * qs[1] + h * qs[2];
        if (rows_contiguous) {
          ops::widen_scaled(raw(row), d, scale, qf + i * d);
        } else {
          for (int64_t c = 0; c < d; ++c) qf[i * d + c] = static_cast<float>(row[c * qs[3]]) * scale;
        }
      }
      attention_scores_avx512(qf, d, kt, kt_stride, rows, lk, d, sc);
      for (int64_t i = 0; i < rows * lk; ++i) {
        if (m[i]) sc[i] = std::numeric_limits<float>::lowest();
      }
      softmax_rows_avx512(sc, rows, lk);
      attention_values_avx512(sc, vf, rows, lk, d, of, d);
      for (int64_t i = 0; i < rows; ++i) ops::narrow_from(of + i * d, d, raw(op + ((s * lq + i0 + i) * heads + h) * d));
    }
  });
}

// The bfloat16 grouped heads on CPUs with AVX-512 BF16 (the decode loop's 160 calls a chunk): the
// tasks of kernel_attention_heads, but both products take
// bfloat16 operands with float32 accumulation and the softmax weights are rounded to bfloat16 before
// the product with v, as the reference's bfloat16 run rounds them; q rows are read as they are (no
// widening) and the keys and values are laid out once per task as bfloat16 pairs.
void bf16_attention_heads(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const bool* blocked, at::Tensor& out) {
  const int64_t lq = q.size(1), heads = q.size(2), d = q.size(3);
  const int64_t lk = k.size(1), kv_heads = k.size(2), groups = heads / kv_heads;
  const auto scale = static_cast<float>(std::pow(static_cast<double>(d), -0.5));
  const int64_t n2 = lk + (lk % 2), kp_stride = lk + 16;  // pairs rows padded off multiples of 1 KB words
  const auto* qp = reinterpret_cast<const uint16_t*>(q.data_ptr<at::BFloat16>());
  const auto* kp = reinterpret_cast<const uint16_t*>(k.data_ptr<at::BFloat16>());
  const auto* vp = reinterpret_cast<const uint16_t*>(v.data_ptr<at::BFloat16>());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  const auto qs = q.strides(), ks = k.strides(), vs = v.strides();
  run_grouped_tasks(q, k, [&](int64_t s, int64_t kv, int64_t i0, int64_t rows) {
    thread_local std::vector<uint32_t> kpairs, vpairs;
    thread_local std::vector<float> scores;
    thread_local std::vector<uint16_t> weights, qrows;
    kpairs.resize(static_cast<size_t>(d / 2 * kp_stride));
    vpairs.resize(static_cast<size_t>(n2 / 2 * d));
    scores.resize(static_cast<size_t>(rows * lk));
    weights.resize(static_cast<size_t>(rows * n2));
    qrows.resize(static_cast<size_t>(rows * d));
    pair_head(kp + s * ks[0] + kv * ks[2], ks[1], vp + s * vs[0] + kv * vs[2], vs[1], lk, d, kp_stride, kpairs.data(), vpairs.data());
    const bool* m = blocked + (s * lq + i0) * lk;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t h = kv * groups + g;
      for (int64_t i = 0; i < rows; ++i) {
        std::memcpy(qrows.data() + i * d, qp + s * qs[0] + (i0 + i) * qs[1] + h * qs[2], static_cast<size_t>(d) * 2);
      }
      attention_scores_bf16(qrows.data(), d, kpairs.data(), kp_stride, rows, lk, d, scale, scores.data());
      for (int64_t i = 0; i < rows * lk; ++i) {
        if (m[i]) scores[static_cast<size_t>(i)] = std::numeric_limits<float>::lowest();
      }
      softmax_rows_to_bf16(scores.data(), rows, lk, weights.data(), n2);
      attention_values_bf16(weights.data(), vpairs.data(), rows, n2, d, op + ((s * lq + i0) * heads + h) * d, heads * d);
    }
  });
}

at::Tensor kernel_grouped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask) {
  const int64_t b = q.size(0), lq = q.size(1), heads = q.size(2), d = q.size(3), lk = k.size(1);
  const at::Tensor blocked = mask.blocked.reshape({b, lq, lk}).contiguous();
  at::Tensor out = at::empty({b, lq, heads * d}, q.options());
  if (q.scalar_type() == at::kFloat) {
    kernel_attention_heads<float>(q, k, v, blocked.data_ptr<bool>(), out);
  } else if (avx512_bf16_attention_available() && q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1) {
    bf16_attention_heads(q, k, v, blocked.data_ptr<bool>(), out);
  } else {
    kernel_attention_heads<at::BFloat16>(q, k, v, blocked.data_ptr<bool>(), out);
  }
  return out;
}

}  // namespace

at::Tensor grouped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMask& mask) {
#if SMOLVLA_HAS_SDPA
  if (!q.is_cpu()) return fused_grouped_attention(q, k, v, mask);
#endif
  const bool grad = at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (!grad && q.is_cpu() && kernel_enabled() && q.size(3) % 16 == 0 &&
      (q.scalar_type() == at::kFloat || q.scalar_type() == at::kBFloat16) && k.scalar_type() == q.scalar_type() &&
      v.scalar_type() == q.scalar_type()) {
    return kernel_grouped_attention(q, k, v, mask);
  }
  const int64_t b = q.size(0), lq = q.size(1), heads = q.size(2), d = q.size(3);
  const int64_t lk = k.size(1), kv_heads = k.size(2), groups = heads / kv_heads;
  // (B, Hkv, G*Lq, d): heads h = kv * G + g share kv head `kv`; one batched GEMM per kv head.
  const at::Tensor qf = q.to(at::kFloat).view({b, lq, kv_heads, groups, d}).permute({0, 2, 3, 1, 4}).reshape({b, kv_heads, groups * lq, d});
  const at::Tensor kf = k.to(at::kFloat).permute({0, 2, 3, 1});  // (B, Hkv, d, Lk)
  at::Tensor scores = at::matmul(qf, kf) * std::pow(static_cast<double>(d), -0.5);
  scores.view({b, kv_heads, groups, lq, lk}).masked_fill_(mask.blocked, std::numeric_limits<float>::lowest());
  const at::Tensor probs = at::softmax(scores, -1).to(v.scalar_type());
  const at::Tensor out = at::matmul(probs, v.permute({0, 2, 1, 3}));  // (B, Hkv, G*Lq, d)
  return out.view({b, kv_heads, groups, lq, d}).permute({0, 3, 1, 2, 4}).reshape({b, lq, heads * d});
}

namespace {

// The AVX-512 products for float32 heads whose width is a multiple of 16; SMOLVLA_ATTENTION=aten
// forces the libtorch path (an escape hatch, and how the tests compare the two).
bool kernel_enabled() {
  static const bool enabled = [] {
    const char* e = std::getenv("SMOLVLA_ATTENTION");
    return !(e != nullptr && std::strcmp(e, "aten") == 0) && avx512_attention_available();
  }();
  return enabled;
}

bool use_avx512_kernel(const at::Tensor& q) {
  return kernel_enabled() && q.scalar_type() == at::kFloat && q.size(3) % 16 == 0;
}

}  // namespace

const char* vision_attention_kernel() { return kernel_enabled() ? "avx512" : "aten"; }

bool fused_attention_available(const at::Tensor& q) {
#if SMOLVLA_HAS_SDPA
  return !q.is_cpu();
#else
  (void)q;
  return false;
#endif
}

at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if SMOLVLA_HAS_SDPA
  const int64_t b = q.size(0), l = q.size(1), heads = q.size(2), d = q.size(3);
  return at::scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), {}, 0.0, false)
      .transpose(1, 2)
      .reshape({b, l, heads * d});
#else
  (void)k;
  (void)v;
  TORCH_CHECK(false, "fused attention needs libtorch 2.0 or newer");
  return q;
#endif
}

namespace {

// bfloat16 heads on CPUs with AVX-512 BF16: both products take bfloat16 operands with float32
// accumulation, as the reference's bfloat16 matmuls do; the softmax runs in float32 and its result
// is rounded to bfloat16 before the product with v, as the reference rounds its attention weights
// to the query's dtype. One task per (sample, head): it lays out that head's keys and values as
// bfloat16 pairs (the operand layout of VDPBF16PS) straight from the strided q/k/v views, then runs
// its query blocks; results go straight into the (B, L, H*d) output. No ATen op, no widened copy.
at::Tensor bf16_blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t b = q.size(0), l = q.size(1), heads = q.size(2), d = q.size(3), lk = k.size(1);
  constexpr int64_t kBlock = 128;  // a block's float32 scores and bfloat16 weights (768 KB at Lk = 1024) stay in L2
  const int64_t n2 = lk + (lk % 2), pairs = n2 / 2, kp_stride = lk + 16;
  at::Tensor out = at::empty({b, l, heads * d}, q.options());
  const auto* qp = reinterpret_cast<const uint16_t*>(q.data_ptr<at::BFloat16>());
  const auto* kp = reinterpret_cast<const uint16_t*>(k.data_ptr<at::BFloat16>());
  const auto* vp = reinterpret_cast<const uint16_t*>(v.data_ptr<at::BFloat16>());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  const auto qs = q.strides(), ks = k.strides(), vs = v.strides();
  run_tasks(b * heads, at::get_num_threads(), [&](int64_t task) {
    thread_local std::vector<uint32_t> kpairs, vpairs;
    thread_local std::vector<float> scores;
    thread_local std::vector<uint16_t> weights, qrows;
    const int64_t s = task / heads, h = task % heads;
    kpairs.resize(static_cast<size_t>(d / 2 * kp_stride));
    vpairs.resize(static_cast<size_t>(pairs * d));
    scores.resize(static_cast<size_t>(kBlock * lk));
    weights.resize(static_cast<size_t>(kBlock * n2));
    qrows.resize(static_cast<size_t>(kBlock * d));
    // Row pointers of this head: q/k/v rows are (B, L, H, d) views with unit stride along d.
    const auto row = [&](const uint16_t* base, const c10::IntArrayRef& st, int64_t j) {
      return base + s * st[0] + j * st[1] + h * st[2];
    };
    pair_head(row(kp, ks, 0), ks[1], row(vp, vs, 0), vs[1], lk, d, kp_stride, kpairs.data(), vpairs.data());
    for (int64_t r0 = 0; r0 < l; r0 += kBlock) {
      const int64_t rows = std::min(kBlock, l - r0);
      for (int64_t i = 0; i < rows; ++i) std::memcpy(qrows.data() + i * d, row(qp, qs, r0 + i), static_cast<size_t>(d) * 2);
      attention_scores_bf16(qrows.data(), d, kpairs.data(), kp_stride, rows, lk, d, static_cast<float>(scale), scores.data());
      softmax_rows_to_bf16(scores.data(), rows, lk, weights.data(), n2);
      attention_values_bf16(weights.data(), vpairs.data(), rows, n2, d, op + (s * l + r0) * heads * d + h * d, heads * d);
    }
  });
  return out;
}

}  // namespace

at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t b = q.size(0), l = q.size(1), heads = q.size(2), d = q.size(3), lk = k.size(1);
  constexpr int64_t kBlock = 256;  // 64..1024 measured within noise; 256 keeps a block's scores (1 MB) in L2
  const int64_t blocks = (l + kBlock - 1) / kBlock;
  if (q.scalar_type() == at::kBFloat16 && kernel_enabled() && avx512_bf16_attention_available() && d % 16 == 0 &&
      k.scalar_type() == at::kBFloat16 && v.scalar_type() == at::kBFloat16 && q.stride(3) == 1 && k.stride(3) == 1 &&
      v.stride(3) == 1) {
    return bf16_blocked_attention(q, k, v, scale);
  }
  if (q.scalar_type() == at::kBFloat16) {
    // bfloat16 heads through the float32 path (the AVX-512 kernel where the head width allows):
    // libtorch 1.13 has no fast bfloat16 GEMM for these small per-block products (~150 GFLOP/s,
    // plus a bfloat16 softmax), while widening q, k and v costs one pass over L x H*d values each.
    // More accurate than bfloat16 scores, too.
    return blocked_attention(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), scale).to(at::kBFloat16);
  }
  if (use_avx512_kernel(q)) {
    // One task per (sample, head), no ATen op inside: it copies its head's Kᵀ and V out of the
    // strided q/k/v views once, then per query block the scaled q rows, scores, softmax and values in
    // the AVX-512 kernels, the result written straight into the (B, L, H*d) output.
    at::Tensor out = at::empty({b, l, heads * d}, q.options());
    const int64_t kt_stride = lk + 16;  // Kᵀ rows padded so they do not alias in L1 when Lk is a multiple of 1024
    const float* qp = q.data_ptr<float>();
    const float* kp = k.data_ptr<float>();
    const float* vp = v.data_ptr<float>();
    float* op = out.data_ptr<float>();
    const auto qst = q.strides(), kst = k.strides(), vst = v.strides();
    const auto scale_f = static_cast<float>(scale);
    run_tasks(b * heads, at::get_num_threads(), [&](int64_t task) {
      thread_local std::vector<float> kt, vc, qrows, scores;
      const int64_t s = task / heads, h = task % heads;
      kt.resize(static_cast<size_t>(d * kt_stride));
      vc.resize(static_cast<size_t>(lk * d));
      qrows.resize(static_cast<size_t>(kBlock * d));
      scores.resize(static_cast<size_t>(kBlock * lk));
      for (int64_t j = 0; j < lk; ++j) {
        const float* krow = kp + s * kst[0] + j * kst[1] + h * kst[2];
        const float* vrow = vp + s * vst[0] + j * vst[1] + h * vst[2];
        for (int64_t c = 0; c < d; ++c) {
          kt[c * kt_stride + j] = krow[c * kst[3]];
          vc[j * d + c] = vrow[c * vst[3]];
        }
      }
      for (int64_t r0 = 0; r0 < l; r0 += kBlock) {
        const int64_t rows = std::min(kBlock, l - r0);
        // Scaling q (rows x d) instead of the score block; equal up to float rounding.
        for (int64_t i = 0; i < rows; ++i) {
          const float* qrow = qp + s * qst[0] + (r0 + i) * qst[1] + h * qst[2];
          for (int64_t c = 0; c < d; ++c) qrows[i * d + c] = qrow[c * qst[3]] * scale_f;
        }
        attention_scores_avx512(qrows.data(), d, kt.data(), kt_stride, rows, lk, d, scores.data());
        softmax_rows_avx512(scores.data(), rows, lk);
        attention_values_avx512(scores.data(), vc.data(), rows, lk, d, op + (s * l + r0) * heads * d + h * d, heads * d);
      }
    });
    return out;
  }
  // Scaling q once (L x H*d values) instead of every score block; equal up to float rounding.
  const at::Tensor qs = (q * scale).contiguous();  // (B, L, H, d)
  // (B, H, L, d): each task's output rows are contiguous, so the products write them in place.
  at::Tensor out = at::empty({b, heads, l, d}, q.options());
  // The libtorch path: one task per (sample, head, query block); ATen ops inside run single-threaded,
  // and so must the BLAS they call.
  const SingleThreadedBlas single_blas;
  at::parallel_for(0, b * heads * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t s = task / (heads * blocks), h = (task / blocks) % heads, blk = task % blocks;
      const int64_t r0 = blk * kBlock, rows = std::min(kBlock, l - r0);
      at::Tensor dst = out.select(0, s).select(0, h).narrow(0, r0, rows);
      const at::Tensor qb = qs.select(0, s).select(1, h).narrow(0, r0, rows);  // (rows, d)
      const at::Tensor kh = k.select(0, s).select(1, h);                       // (Lk, d)
      const at::Tensor vh = v.select(0, s).select(1, h);
      const at::Tensor probs = at::_softmax(at::mm(qb, kh.t()).to(at::kFloat), -1, false);
      at::mm_out(dst, probs.to(v.scalar_type()), vh);
    }
  });
  return out.permute({0, 2, 1, 3}).reshape({b, l, heads * d});
}

}  // namespace smolvla::model
