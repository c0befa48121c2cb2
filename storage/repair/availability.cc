#include "storage/repair/availability.h"

#include <algorithm>
#include <cmath>

namespace quid {

double BinomialAvailability(int k, int m, double p) {
  const int n = k + m;
  if (k <= 0) return 1.0;
  if (n <= 0 || k > n) return 0.0;
  p = std::clamp(p, 0.0, 1.0);
  if (p == 1.0) return 1.0;
  if (p == 0.0) return 0.0;
  // Sum of C(n, j) p^j (1-p)^(n-j) for j >= k, in logs (n up to 48 stays exact enough).
  double total = 0;
  for (int j = k; j <= n; ++j) {
    const double log_term = std::lgamma(n + 1.0) - std::lgamma(j + 1.0) - std::lgamma(n - j + 1.0) +
                            j * std::log(p) + (n - j) * std::log1p(-p);
    total += std::exp(log_term);
  }
  return std::min(total, 1.0);
}

double SchemeAvailability(int k, int m, std::span<const double> uptimes) {
  if (uptimes.empty()) return 0.0;
  double sum = 0;
  for (double u : uptimes) sum += std::clamp(u, 0.0, 1.0);
  return BinomialAvailability(k, m, sum / static_cast<double>(uptimes.size()));
}

}  // namespace quid
