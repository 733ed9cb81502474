// zodc: level-wise CART growth on CPU, an XLA FFI custom call (jax.ffi).
//
// The same tree as `grow_tree` in `kernels/_common.py` (read that docstring first): every feature
// sorted once, the samples kept grouped by node in value order, every midpoint between distinct
// consecutive values a candidate, ties to the lowest feature and then the lowest threshold, and
// the arithmetic of the scores in float32 in the same order of operations. Where `grow_tree`
// scores all (position, position) pairs of a level with one dense (m, m) product (what suits an
// accelerator), this kernel walks each node's sorted samples once with running sums: O(d m) work
// per level instead of O(d m^2). Running sums add the samples in value order; `grow_tree`'s
// product adds them in its own order, so the two agree bit for bit where the statistics are sums
// of integers (unweighted fits, and weights that are multiples of a power of two), and otherwise to
// float32 rounding of the statistics.
//
// One call fits a batch of tables (every leading axis of the inputs); the tables are shared out
// over XLA's CPU thread pool. It reads only its inputs and writes only its outputs.
//
// A second handler, `ZodcTreeApply`, is `leaf_index`: the heap index of the leaf each row of x
// falls in, for a batch of trees and of row sets whose leading axes broadcast against each other.
// Each row's leaf depends on that row and the tree alone.
//
// Inputs:  x (..., m, d) f32, stats (..., m, K) f32 (additive per-sample statistics),
//          pure (..., m) f32 (the target whose constancy marks a node pure; read by Friedman),
//          draws (..., max_depth, 2^(max_depth-1), d) u32 (per-node feature draws; read when
//          max_features > 0). Leading (batch) axes broadcast against each other.
// Outputs: feature (..., N) s32, threshold (..., N) f32, is_leaf (..., N) pred,
//          value (..., N, K) f32 (raw node statistics), N = 2^(max_depth + 1) - 1, heap order.
// Attributes: max_depth, min_samples_leaf, criterion (0: gini, 1: friedman_mse), use_pure,
//             max_features (0: every feature).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// kernels/_common.py: FEATURE_THRESHOLD and IMPURITY_EPSILON, as float32 (JAX casts the Python
// constants to the arrays' float32).
const float kFeatureThreshold = static_cast<float>(1e-7);
const float kImpurityEpsilon = static_cast<float>(10 * 2.220446049250313e-16);

enum Criterion : int64_t { kGini = 0, kFriedman = 1 };

struct Shape {
  int64_t m, d, k, n_nodes, max_depth, min_samples_leaf, criterion;
  int64_t max_features;  // features searched per node, drawn by `draws`; 0: every feature
};

inline float Safe(float w) { return w > 0.0f ? w : 1.0f; }

// `_sum_classes`: an unrolled left-to-right sum over the classes.
inline float SumClasses(const float* v, int64_t k) {
  float total = v[0];
  for (int64_t c = 1; c < k; ++c) total = total + v[c];
  return total;
}

inline float SumSquares(const float* v, int64_t k) {
  float total = v[0] * v[0];
  for (int64_t c = 1; c < k; ++c) total = total + v[c] * v[c];
  return total;
}

// `_gini_impurity` (scikit-learn's node impurity): 1 - sum_k s_k^2 / w^2; a pure node's is 0 exactly.
inline float GiniImpurity(const float* s, int64_t k) {
  const float w = SumClasses(s, k);
  if (!(w > 0.0f)) return 0.0f;
  return 1.0f - SumSquares(s, k) / (w * w);
}

// `_gini_proxy`: sum_k l_k^2 / w_l + sum_k r_k^2 / w_r.
inline float GiniProxy(const float* l, const float* r, int64_t k) {
  return SumSquares(l, k) / Safe(SumClasses(l, k)) + SumSquares(r, k) / Safe(SumClasses(r, k));
}

// An order-preserving integer key of a float32: -0 equals +0 (as float comparison has it), NaNs
// sort after +inf; with the sample id in the low bits every key is distinct, so a plain sort of
// the keys is the stable argsort.
inline uint64_t SortKey(float value, int64_t id) {
  if (value == 0.0f) value = 0.0f;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (std::isnan(value)) bits = 0x7fc00000u;
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<uint64_t>(bits) << 32) | static_cast<uint64_t>(id);
}

// Up to this many samples, a feature is sorted by counting each value's rank (m^2 comparisons
// that vectorise, no branches); above it by std::sort of the keys.
constexpr int64_t kRankSortMax = 256;

// Eight float32 / int32 lanes (GCC and Clang vector extensions: AVX2 registers in the AVX2 clone,
// pairs of SSE registers otherwise).
typedef float Floats8 __attribute__((vector_size(32)));
typedef int32_t Ints8 __attribute__((vector_size(32)));
constexpr int64_t kRankBlock = 32;  // values ranked at once, held in registers

// The stable argsort of one column by ranks: `less[i]` counts the values below sample i's, and
// samples of equal value take consecutive places in id order. NaNs rank as +inf. The values are
// ranked 32 at a time against a broadcast of every value, with the 32 values and their counts in
// registers (m^2 comparisons, eight to a vector instruction). Compiled twice, for AVX2 and for
// any x86-64 (or the target's default), chosen when the library loads.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void RankSort(const float* column, int64_t m, float* values, int32_t* less, int32_t* seen,
              int32_t* order) {
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t padded = (m + kRankBlock - 1) / kRankBlock * kRankBlock;
  for (int64_t i = 0; i < m; ++i) {
    const float v = column[i];
    values[i] = std::isnan(v) ? inf : v;
  }
  for (int64_t i = m; i < padded; ++i) values[i] = inf;
  for (int64_t i0 = 0; i0 < padded; i0 += kRankBlock) {
    Floats8 a0, a1, a2, a3;
    std::memcpy(&a0, values + i0, sizeof a0);
    std::memcpy(&a1, values + i0 + 8, sizeof a1);
    std::memcpy(&a2, values + i0 + 16, sizeof a2);
    std::memcpy(&a3, values + i0 + 24, sizeof a3);
    Ints8 c0 = {}, c1 = {}, c2 = {}, c3 = {};
    for (int64_t j = 0; j < m; ++j) {
      const float v = values[j];
      const Floats8 b = {v, v, v, v, v, v, v, v};
      c0 -= b < a0;  // a true comparison is -1 in every bit
      c1 -= b < a1;
      c2 -= b < a2;
      c3 -= b < a3;
    }
    std::memcpy(less + i0, &c0, sizeof c0);
    std::memcpy(less + i0 + 8, &c1, sizeof c1);
    std::memcpy(less + i0 + 16, &c2, sizeof c2);
    std::memcpy(less + i0 + 24, &c3, sizeof c3);
  }
  for (int64_t i = 0; i < m; ++i) seen[i] = 0;
  for (int64_t i = 0; i < m; ++i) {
    const int32_t r = less[i];
    order[r + seen[r]++] = static_cast<int32_t>(i);
  }
}

// The scores of a node's candidates along one feature, for two split statistics (gini on two
// classes, Friedman): candidate p splits after the node's p-th sorted sample, with left sums
// (l0[p], l1[p]), lp[p] positive-weight samples on the left and values v[p] <= v[p + 1]; -inf where
// it is not a valid split. Without kCheckPositive every sample of the node has positive weight: the
// left has p + 1 of them and the right at least one, so lp is not read. `_gini_proxy` /
// `_friedman_proxy`'s float32 operations in their order, one candidate per vector lane (no FMA:
// -ffp-contract=off), so the same scores bit for bit.
template <bool kIsFriedman, bool kCheckPositive>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default"), optimize("O3")))
#endif
void ScoreTwo(int64_t count, int64_t first, const float* __restrict l0, const float* __restrict l1,
              const int32_t* __restrict lp, const float* __restrict v, float t0, float t1, int32_t positives,
              float* __restrict score) {
  const float minus_inf = -std::numeric_limits<float>::infinity();
  for (int64_t p = 0; p < count; ++p) {
    const float left0 = l0[p], left1 = l1[p];
    const float right0 = t0 - left0, right1 = t1 - left1;
    float value;
    if constexpr (kIsFriedman) {
      const float wl = left0 > 0.0f ? left0 : 1.0f, wr = right0 > 0.0f ? right0 : 1.0f;
      const float diff = left1 / wl - right1 / wr;
      value = wl * wr * diff * diff;
    } else {
      const float wl = left0 + left1, wr = right0 + right1;
      value = (left0 * left0 + left1 * left1) / (wl > 0.0f ? wl : 1.0f) +
              (right0 * right0 + right1 * right1) / (wr > 0.0f ? wr : 1.0f);
    }
    bool valid = (p >= first) & (v[p + 1] - v[p] > kFeatureThreshold);
    if constexpr (kCheckPositive) valid = valid & (lp[p] > 0) & (lp[p] < positives);
    score[p] = valid ? value : minus_inf;
  }
}

// ScoreTwo for gini on `k` classes (any k): the left sums of statistic c at left[c * stride + p].
void ScoreMany(int64_t count, int64_t first, int64_t k, const float* left, int64_t stride, const int32_t* lp,
               const float* v, const float* total, int32_t positives, float* score) {
  float l[64], r[64];
  for (int64_t p = 0; p < count; ++p) {
    for (int64_t c = 0; c < k; ++c) {
      l[c] = left[c * stride + p];
      r[c] = total[c] - l[c];
    }
    const bool valid = p >= first && v[p + 1] - v[p] > kFeatureThreshold && lp[p] > 0 && lp[p] < positives;
    score[p] = valid ? GiniProxy(l, r, k) : -std::numeric_limits<float>::infinity();
  }
}

// The largest of `count` scores (NaNs ignored, as a comparison with one is false); -inf for none.
// Eight lanes at a time: the candidate a strictly-greater scan keeps is the first position holding it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
float MaxScore(int64_t count, const float* score) {
  const float minus_inf = -std::numeric_limits<float>::infinity();
  Floats8 best = {minus_inf, minus_inf, minus_inf, minus_inf, minus_inf, minus_inf, minus_inf, minus_inf};
  int64_t p = 0;
  for (; p + 8 <= count; p += 8) {
    Floats8 v;
    std::memcpy(&v, score + p, sizeof v);
    best = v > best ? v : best;
  }
  float top = minus_inf;
  for (int lane = 0; lane < 8; ++lane) top = best[lane] > top ? best[lane] : top;
  for (; p < count; ++p) top = score[p] > top ? score[p] : top;
  return top;
}

// A node's running sums along one feature's order, candidates [0, count): the left split statistics
// (statistic c at left[c * m + p]), with kCountPositive the left count of positive-weight samples, and
// the samples' values in order.
template <int SK, bool kCountPositive>
inline void RunningSums(int64_t count, int64_t split_k, int64_t m, const int32_t* row, const float* ss,
                        const uint8_t* positive, const float* column, float* left, int32_t* left_positive,
                        float* sorted) {
  float sums[SK > 0 ? SK : 64] = {};
  int32_t positives = 0;
  for (int64_t p = 0; p < count; ++p) {
    const int32_t i = row[p];
    for (int64_t c = 0; c < split_k; ++c) {
      sums[c] += ss[i * split_k + c];
      left[c * m + p] = sums[c];
    }
    if constexpr (kCountPositive) {
      positives += positive[i];
      left_positive[p] = positives;
    }
    sorted[p] = column[i];
  }
}

// Scratch reused by one worker across the tables it fits.
struct Workspace {
  std::vector<int32_t> order, scratch, node, node_start, node_count, node_positive, less, seen;
  std::vector<uint64_t> keys;
  std::vector<float> columns, values, split_stats, node_stats, split_total, pure_high, pure_low;
  std::vector<float> left, sorted, score;
  std::vector<int32_t> left_positive;
  std::vector<uint64_t> draw_keys;
  std::vector<uint8_t> searched;
  std::vector<uint8_t> positive, alive, has_split, go_right;
  std::vector<int32_t> split_feature;
  std::vector<float> split_threshold;
};

// The features a node searches (random forests), as `grow_tree` draws them: the `max_features`
// largest of the node's d random draws (ties to the lower index), and the feature of the largest
// draw among those not constant in the node (scikit-learn keeps drawing until it finds one). The
// search then visits them in index order, so the tie-breaks stay those of the full search.
void SearchedFeatures(const Shape& s, const uint32_t* draw, int64_t start, int64_t end, Workspace& w) {
  const int64_t d = s.d, m = s.m;
  for (int64_t f = 0; f < d; ++f) {
    w.draw_keys[f] = (static_cast<uint64_t>(~draw[f]) << 32) | static_cast<uint64_t>(f);
    w.searched[f] = 0;
  }
  std::partial_sort(w.draw_keys.begin(), w.draw_keys.begin() + s.max_features, w.draw_keys.end());
  for (int64_t r = 0; r < s.max_features; ++r) w.searched[w.draw_keys[r] & 0xffffffffu] = 1;
  int64_t fallback = 0;
  uint32_t fallback_draw = 0;
  bool first = true;
  for (int64_t f = 0; f < d; ++f) {
    const int32_t* row = w.order.data() + f * m;
    const float* column = w.columns.data() + f * m;
    bool non_constant = false;
    for (int64_t p = start; p + 1 < end && !non_constant; ++p) {
      non_constant = column[row[p + 1]] - column[row[p]] > kFeatureThreshold;
    }
    const uint32_t value = non_constant ? draw[f] : 0u;  // jnp.argmax(where(non_constant, draw, 0))
    if (first || value > fallback_draw) {
      fallback = f;
      fallback_draw = value;
      first = false;
    }
  }
  w.searched[fallback] = 1;
}

template <int SK, bool kIsFriedman>
void GrowOne(const Shape& s, const float* x, const float* stats, const float* pure, const uint32_t* draws,
             int32_t* feature, float* threshold, bool* is_leaf, float* value, Workspace& w) {
  const int64_t m = s.m, d = s.d, k = s.k;
  const int64_t split_k = SK > 0 ? SK : k;  // Criterion.split_columns
  const int64_t half = int64_t{1} << (s.max_depth - 1);
  const int64_t widest = int64_t{1} << s.max_depth;
  const int64_t padded = (m + kRankBlock - 1) / kRankBlock * kRankBlock;
  w.order.resize(d * m);
  w.columns.resize(d * m);
  w.scratch.resize(m);
  w.keys.resize(m);
  w.values.resize(padded);
  w.less.resize(padded);
  w.seen.resize(m);
  w.split_stats.resize(m * split_k);
  w.left.resize(split_k * m);
  w.sorted.resize(m);
  w.score.resize(m);
  w.left_positive.resize(m);
  w.draw_keys.resize(d);
  w.searched.assign(d, 1);
  w.node.assign(m, 0);
  w.positive.resize(m);
  w.go_right.resize(m);
  w.node_start.resize(widest + 1);
  w.node_count.resize(widest);
  w.node_positive.resize(widest);
  w.node_stats.resize(widest * k);
  w.split_total.resize(widest * split_k);
  w.pure_high.resize(widest);
  w.pure_low.resize(widest);
  w.alive.assign(widest, 0);
  w.has_split.resize(half);
  w.split_feature.resize(half);
  w.split_threshold.resize(half);
  w.alive[0] = 1;
  const float* ss = w.split_stats.data();

  for (int64_t i = 0; i < m; ++i) {
    const float* si = stats + i * k;
    const float weight = kIsFriedman ? si[0] : SumClasses(si, k);  // Criterion.weight_fn
    w.positive[i] = weight > 0.0f;
    for (int64_t c = 0; c < split_k; ++c) w.split_stats[i * split_k + c] = si[c];
    for (int64_t f = 0; f < d; ++f) w.columns[f * m + i] = x[i * d + f];
  }
  // feature_order: the stable argsort of every feature.
  for (int64_t f = 0; f < d; ++f) {
    const float* column = w.columns.data() + f * m;
    int32_t* row = w.order.data() + f * m;
    if (m <= kRankSortMax) {
      RankSort(column, m, w.values.data(), w.less.data(), w.seen.data(), row);
      continue;
    }
    for (int64_t i = 0; i < m; ++i) w.keys[i] = SortKey(column[i], i);
    std::sort(w.keys.begin(), w.keys.end());
    for (int64_t i = 0; i < m; ++i) row[i] = static_cast<int32_t>(w.keys[i] & 0xffffffffu);
  }

  for (int64_t level = 0; level <= s.max_depth; ++level) {
    const int64_t n_level = int64_t{1} << level;
    const int64_t heap = n_level - 1;
    std::fill(w.node_stats.begin(), w.node_stats.begin() + n_level * k, 0.0f);
    std::fill(w.node_count.begin(), w.node_count.begin() + n_level, 0);
    std::fill(w.node_positive.begin(), w.node_positive.begin() + n_level, 0);
    std::fill(w.split_total.begin(), w.split_total.begin() + n_level * split_k, 0.0f);
    std::fill(w.pure_high.begin(), w.pure_high.begin() + n_level, -std::numeric_limits<float>::infinity());
    std::fill(w.pure_low.begin(), w.pure_low.begin() + n_level, std::numeric_limits<float>::infinity());
    for (int64_t i = 0; i < m; ++i) {  // segment sums in sample order
      const int32_t n = w.node[i];
      const float* si = stats + i * k;
      for (int64_t c = 0; c < k; ++c) w.node_stats[n * k + c] += si[c];
      for (int64_t c = 0; c < split_k; ++c) w.split_total[n * split_k + c] += si[c];
      w.node_count[n] += 1;
      w.node_positive[n] += w.positive[i];
      if (pure != nullptr && w.positive[i]) {
        w.pure_high[n] = std::max(w.pure_high[n], pure[i]);
        w.pure_low[n] = std::min(w.pure_low[n], pure[i]);
      }
    }
    std::memcpy(value + heap * k, w.node_stats.data(), sizeof(float) * n_level * k);
    if (level == s.max_depth) {
      for (int64_t n = 0; n < n_level; ++n) {
        feature[heap + n] = 0;
        threshold[heap + n] = 0.0f;
        is_leaf[heap + n] = true;
      }
      break;
    }
    w.node_start[0] = 0;
    for (int64_t n = 0; n < n_level; ++n) w.node_start[n + 1] = w.node_start[n] + w.node_count[n];

    for (int64_t n = 0; n < n_level; ++n) {
      const float* ns = w.node_stats.data() + n * k;
      const float node_weight = kIsFriedman ? ns[0] : SumClasses(ns, k);
      const bool is_pure = kIsFriedman ? !(w.pure_high[n] > w.pure_low[n]) : GiniImpurity(ns, k) <= kImpurityEpsilon;
      w.has_split[n] = 0;
      w.split_feature[n] = 0;
      w.split_threshold[n] = 0.0f;
      if (!(w.alive[n] && !is_pure && w.node_count[n] >= 2 * s.min_samples_leaf && node_weight > 0.0f)) continue;

      const int64_t start = w.node_start[n], end = w.node_start[n + 1];
      if (s.max_features > 0) SearchedFeatures(s, draws + (level * half + n) * d, start, end, w);
      const int64_t positives = w.node_positive[n];
      const bool all_positive = positives == end - start;
      // Candidate p splits after the node's p-th sorted sample; both sides need min_samples_leaf.
      const int64_t first = s.min_samples_leaf - 1, count = end - start - s.min_samples_leaf;
      const float* total = w.split_total.data() + n * split_k;
      float best_score = -std::numeric_limits<float>::infinity();
      for (int64_t f = 0; f < d; ++f) {
        if (!w.searched[f]) continue;
        const int32_t* row = w.order.data() + f * m + start;
        const float* column = w.columns.data() + f * m;
        // Running sums along the feature's order (grow_tree's left statistics), then the scores. Where
        // every sample of the node has positive weight the left count of them is p + 1, always valid.
        if (all_positive && SK == 2) {
          RunningSums<SK, false>(count, split_k, m, row, ss, w.positive.data(), column, w.left.data(), nullptr,
                                 w.sorted.data());
        } else {
          RunningSums<SK, true>(count, split_k, m, row, ss, w.positive.data(), column, w.left.data(),
                                w.left_positive.data(), w.sorted.data());
        }
        w.sorted[count] = column[row[count]];
        if constexpr (SK == 2) {
          if (all_positive) {
            ScoreTwo<kIsFriedman, false>(count, first, w.left.data(), w.left.data() + m, nullptr, w.sorted.data(),
                                         total[0], total[1], static_cast<int32_t>(positives), w.score.data());
          } else {
            ScoreTwo<kIsFriedman, true>(count, first, w.left.data(), w.left.data() + m, w.left_positive.data(),
                                        w.sorted.data(), total[0], total[1], static_cast<int32_t>(positives),
                                        w.score.data());
          }
        } else {
          ScoreMany(count, first, split_k, w.left.data(), m, w.left_positive.data(), w.sorted.data(), total,
                    static_cast<int32_t>(positives), w.score.data());
        }
        // Strictly better: ties keep the lower feature, then the lower position.
        const float top = MaxScore(count, w.score.data());
        if (top > best_score) {
          int64_t p = 0;
          while (!(w.score[p] == top)) ++p;
          best_score = top;
          const float low = w.sorted[p], next = w.sorted[p + 1];
          float midpoint = low / 2.0f + next / 2.0f;  // scikit-learn's, the lower value if it rounds up
          if (midpoint == next || std::isinf(midpoint)) midpoint = low;
          w.has_split[n] = 1;
          w.split_feature[n] = static_cast<int32_t>(f);
          w.split_threshold[n] = midpoint;
        }
      }
    }
    for (int64_t n = 0; n < n_level; ++n) {
      feature[heap + n] = w.split_feature[n];
      threshold[heap + n] = w.split_threshold[n];
      is_leaf[heap + n] = !w.has_split[n];
    }
    for (int64_t i = 0; i < m; ++i) {
      const int32_t n = w.node[i];
      w.go_right[i] = w.has_split[n] && w.columns[w.split_feature[n] * m + i] > w.split_threshold[n];
    }
    if (level + 1 < s.max_depth) {
      // Stable partition of every node's group, left child first, in every feature.
      for (int64_t f = 0; f < d; ++f) {
        int32_t* row = w.order.data() + f * m;
        for (int64_t n = 0; n < n_level; ++n) {
          if (!w.has_split[n]) continue;  // every sample goes left: the group stays as it is
          const int64_t start = w.node_start[n], end = w.node_start[n + 1];
          int64_t lefts = start, rights = 0;
          for (int64_t p = start; p < end; ++p) {  // branch-free: write both, advance one
            const int32_t i = row[p];
            const int64_t goes_right = w.go_right[i];
            row[lefts] = i;
            w.scratch[rights] = i;
            lefts += 1 - goes_right;
            rights += goes_right;
          }
          std::memcpy(row + lefts, w.scratch.data(), sizeof(int32_t) * rights);
        }
      }
    }
    for (int64_t i = 0; i < m; ++i) w.node[i] = 2 * w.node[i] + w.go_right[i];
    for (int64_t n = n_level - 1; n >= 0; --n) w.alive[2 * n] = w.alive[2 * n + 1] = w.has_split[n];
  }
}

using GrowFn = void (*)(const Shape&, const float*, const float*, const float*, const uint32_t*, int32_t*, float*,
                        bool*, float*, Workspace&);

GrowFn SelectGrow(const Shape& s) {
  if (s.criterion == kFriedman) return GrowOne<2, true>;
  if (s.k == 2) return GrowOne<2, false>;
  if (s.k == 3) return GrowOne<3, false>;
  return GrowOne<0, false>;
}

// Work items [0, count) are claimed one at a time from a shared counter by the calling thread and
// by up to `num_threads - 1` pool tasks. The caller waits only for items already claimed, so a
// task that starts late (or never, on a busy pool) cannot hold it up; a task that starts after the
// call returned finds no item left and touches nothing but the shared counter.
struct Batch {
  std::atomic<int64_t> next{0};
  int64_t done = 0;
  std::mutex mutex;
  std::condition_variable finished;
};

// `make_worker()` returns a callable `(int64_t item)`, one per thread (its own scratch).
template <typename MakeWorker>
void ParallelFor(ffi::ThreadPool& pool, int64_t count, MakeWorker make_worker) {
  if (count <= 0) return;
  auto state = std::make_shared<Batch>();
  auto work = [=](Batch& b) {
    auto worker = make_worker();
    int64_t claimed = 0;
    for (int64_t t = b.next.fetch_add(1); t < count; t = b.next.fetch_add(1)) {
      worker(t);
      ++claimed;
    }
    if (claimed > 0) {
      std::lock_guard<std::mutex> lock(b.mutex);
      b.done += claimed;
      if (b.done == count) b.finished.notify_all();
    }
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), count) - 1;
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([state, work] { work(*state); });
  work(*state);
  std::unique_lock<std::mutex> lock(state->mutex);
  state->finished.wait(lock, [&] { return state->done == count; });
}

// The heap index of the leaf of rows [first, last) of x (row-major, d columns) in one tree. Eight
// rows at a time, every level for each (a leaf keeps its index), so eight independent chains of
// loads are in flight instead of one; the rest one at a time.
void RouteRows(const int32_t* __restrict feature, const float* __restrict threshold, const bool* __restrict stop,
               const float* __restrict x, int64_t d, int64_t max_depth, int64_t first, int64_t last,
               int32_t* __restrict out) {
  const int32_t last_column = static_cast<int32_t>(d - 1);
  auto next = [&](int32_t at, const float* row) {  // as jnp's clamped gather; NaN goes left
    const int32_t column = std::min(std::max(feature[at], 0), last_column);
    const int32_t child = 2 * at + 1 + (row[column] > threshold[at] ? 1 : 0);
    return stop[at] ? at : child;
  };
  int64_t row = first;
  for (; row + 8 <= last; row += 8) {
    const float* r = x + row * d;
    int32_t n0 = 0, n1 = 0, n2 = 0, n3 = 0, n4 = 0, n5 = 0, n6 = 0, n7 = 0;
    for (int64_t level = 0; level < max_depth; ++level) {
      n0 = next(n0, r);
      n1 = next(n1, r + d);
      n2 = next(n2, r + 2 * d);
      n3 = next(n3, r + 3 * d);
      n4 = next(n4, r + 4 * d);
      n5 = next(n5, r + 5 * d);
      n6 = next(n6, r + 6 * d);
      n7 = next(n7, r + 7 * d);
    }
    out[row] = n0;
    out[row + 1] = n1;
    out[row + 2] = n2;
    out[row + 3] = n3;
    out[row + 4] = n4;
    out[row + 5] = n5;
    out[row + 6] = n6;
    out[row + 7] = n7;
  }
  for (; row < last; ++row) {
    int32_t node = 0;
    for (int64_t level = 0; level < max_depth; ++level) node = next(node, x + row * d);
    out[row] = node;
  }
}

}  // namespace

// The leading (batch) axes of one operand, right-aligned against the output's: an element stride
// per output batch axis, 0 where the operand's axis has size 1 (broadcast).
static bool BatchStrides(ffi::Span<const int64_t> dims, size_t core, const std::vector<int64_t>& out_batch,
                         int64_t item, std::vector<int64_t>& strides) {
  const size_t rank = dims.size() - core;
  if (rank > out_batch.size()) return false;
  strides.assign(out_batch.size(), 0);
  int64_t stride = item;
  for (size_t a = 0; a < rank; ++a) {
    const size_t axis = rank - 1 - a, out_axis = out_batch.size() - 1 - a;
    if (dims[axis] != 1) {
      if (dims[axis] != out_batch[out_axis]) return false;
      strides[out_axis] = stride;
    }
    stride *= dims[axis];
  }
  return true;
}

// The flat offset of batch element `b` of one operand from its per-axis strides.
static int64_t BatchOffset(int64_t b, const std::vector<int64_t>& out_batch, const std::vector<int64_t>& strides) {
  int64_t offset = 0;
  for (size_t a = out_batch.size(); a-- > 0;) {
    offset += (b % out_batch[a]) * strides[a];
    b /= out_batch[a];
  }
  return offset;
}

static ffi::Error TreeFit(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> stats,
                          ffi::Buffer<ffi::F32> pure, ffi::Buffer<ffi::U32> draws, ffi::ResultBuffer<ffi::S32> feature,
                          ffi::ResultBuffer<ffi::F32> threshold, ffi::ResultBuffer<ffi::PRED> is_leaf,
                          ffi::ResultBuffer<ffi::F32> value, int64_t max_depth, int64_t min_samples_leaf,
                          int64_t criterion, bool use_pure, int64_t max_features) {
  const auto x_dims = x.dimensions();
  const auto stats_dims = stats.dimensions();
  const auto pure_dims = pure.dimensions();
  const auto draw_dims = draws.dimensions();
  const auto out_dims = feature->dimensions();
  if (x_dims.size() < 2 || stats_dims.size() < 2 || out_dims.size() < 1 || max_depth < 1 || max_depth > 20) {
    return ffi::Error::InvalidArgument("zodc_tree_fit: x must be (..., m, d) and stats (..., m, K).");
  }
  Shape s;
  s.m = x_dims[x_dims.size() - 2];
  s.d = x_dims.back();
  s.k = stats_dims.back();
  s.max_depth = max_depth;
  s.min_samples_leaf = min_samples_leaf;
  s.criterion = criterion;
  s.n_nodes = (int64_t{2} << max_depth) - 1;
  s.max_features = max_features;
  const int64_t half = int64_t{1} << (max_depth - 1);
  if (stats_dims[stats_dims.size() - 2] != s.m || s.m < 1 || s.d < 1 || s.k < 1 || out_dims.back() != s.n_nodes ||
      (criterion != kGini && criterion != kFriedman) || (criterion == kFriedman && s.k < 2) ||
      (criterion == kGini && s.k > 64) || max_features < 0 || max_features > s.d ||
      (use_pure && (pure_dims.size() == 0 || pure_dims.back() != s.m)) ||
      (max_features > 0 && (draw_dims.size() < 3 || draw_dims.back() != s.d ||
                            draw_dims[draw_dims.size() - 2] != half ||
                            draw_dims[draw_dims.size() - 3] != max_depth))) {
    return ffi::Error::InvalidArgument("zodc_tree_fit: inconsistent shapes or attributes.");
  }
  std::vector<int64_t> out_batch(out_dims.begin(), out_dims.end() - 1), x_strides, stats_strides, pure_strides,
      draw_strides;
  if (!BatchStrides(x_dims, 2, out_batch, s.m * s.d, x_strides) ||
      !BatchStrides(stats_dims, 2, out_batch, s.m * s.k, stats_strides) ||
      (use_pure && !BatchStrides(pure_dims, 1, out_batch, s.m, pure_strides)) ||
      (max_features > 0 && !BatchStrides(draw_dims, 3, out_batch, max_depth * half * s.d, draw_strides))) {
    return ffi::Error::InvalidArgument("zodc_tree_fit: batch axes do not broadcast.");
  }
  int64_t batch = 1;
  for (int64_t size : out_batch) batch *= size;

  const float* x_data = x.typed_data();
  const float* stats_data = stats.typed_data();
  const float* pure_data = use_pure ? pure.typed_data() : nullptr;
  const uint32_t* draw_data = max_features > 0 ? draws.typed_data() : nullptr;
  int32_t* feature_data = feature->typed_data();
  float* threshold_data = threshold->typed_data();
  bool* leaf_data = is_leaf->typed_data();
  float* value_data = value->typed_data();

  const GrowFn grow = SelectGrow(s);
  ParallelFor(pool, batch, [=] {
    return [=, workspace = Workspace()](int64_t t) mutable {
      grow(s, x_data + BatchOffset(t, out_batch, x_strides), stats_data + BatchOffset(t, out_batch, stats_strides),
           pure_data == nullptr ? nullptr : pure_data + BatchOffset(t, out_batch, pure_strides),
           draw_data == nullptr ? nullptr : draw_data + BatchOffset(t, out_batch, draw_strides),
           feature_data + t * s.n_nodes, threshold_data + t * s.n_nodes, leaf_data + t * s.n_nodes,
           value_data + t * s.n_nodes * s.k, workspace);
    };
  });
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZodcTreeFit, TreeFit,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::PRED>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("max_depth")
                                  .Attr<int64_t>("min_samples_leaf")
                                  .Attr<int64_t>("criterion")
                                  .Attr<bool>("use_pure")
                                  .Attr<int64_t>("max_features"));

static ffi::Error TreeApply(ffi::ThreadPool pool, ffi::Buffer<ffi::S32> feature, ffi::Buffer<ffi::F32> threshold,
                            ffi::Buffer<ffi::PRED> is_leaf, ffi::Buffer<ffi::F32> x, ffi::ResultBuffer<ffi::S32> leaf,
                            int64_t max_depth) {
  const auto tree_dims = feature.dimensions();
  const auto x_dims = x.dimensions();
  const auto out_dims = leaf->dimensions();
  if (tree_dims.size() < 1 || x_dims.size() < 2 || out_dims.size() < 1 || max_depth < 1 || max_depth > 20 ||
      tree_dims.back() != (int64_t{2} << max_depth) - 1 || threshold.element_count() != feature.element_count() ||
      is_leaf.element_count() != feature.element_count() || out_dims.back() != x_dims[x_dims.size() - 2]) {
    return ffi::Error::InvalidArgument("zodc_tree_apply: inconsistent shapes or attributes.");
  }
  const int64_t n_nodes = tree_dims.back(), n = x_dims[x_dims.size() - 2], d = x_dims.back();
  std::vector<int64_t> out_batch(out_dims.begin(), out_dims.end() - 1), tree_strides, x_strides;
  if (!BatchStrides(tree_dims, 1, out_batch, n_nodes, tree_strides) ||
      !BatchStrides(x_dims, 2, out_batch, n * d, x_strides)) {
    return ffi::Error::InvalidArgument("zodc_tree_apply: batch axes do not broadcast.");
  }
  int64_t batch = 1;
  for (int64_t size : out_batch) batch *= size;
  const int32_t* feature_data = feature.typed_data();
  const float* threshold_data = threshold.typed_data();
  const bool* leaf_flags = is_leaf.typed_data();
  const float* x_data = x.typed_data();
  int32_t* out = leaf->typed_data();
  // Items: (batch element, block of rows), so one tree and its rows also spread over the threads.
  constexpr int64_t kRows = 256;
  const int64_t blocks = (n + kRows - 1) / kRows;
  ParallelFor(pool, batch * blocks, [=] {
    return [=](int64_t item) {
      const int64_t b = item / blocks, first = (item % blocks) * kRows, last = std::min(n, first + kRows);
      const int64_t tree_offset = BatchOffset(b, out_batch, tree_strides);
      const int64_t x_offset = BatchOffset(b, out_batch, x_strides);
      RouteRows(feature_data + tree_offset, threshold_data + tree_offset, leaf_flags + tree_offset,
                x_data + x_offset, d, max_depth, first, last, out + b * n);
    };
  });
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZodcTreeApply, TreeApply,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::PRED>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("max_depth"));
