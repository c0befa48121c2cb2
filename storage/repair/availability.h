// Chunk availability a scheme gives at given host uptimes (DESIGN.md, "stripe width"):
// a chunk is readable when at least k of its k+m hosts are online. Pure functions.
#pragma once

#include <span>

namespace quid {

// P(at least k of k+m independent hosts are up), each up with probability p.
double BinomialAvailability(int k, int m, double p);
// The same at the volume's hosts' measured uptimes, as the binomial at their mean uptime:
// exact for equal uptimes. For unequal ones the true (Poisson-binomial) count has less
// variance at the same mean, so where k lies below the mean number of hosts up (every
// useful scheme) the binomial errs low: the figure shown is never optimistic (Hoeffding).
double SchemeAvailability(int k, int m, std::span<const double> uptimes);

}  // namespace quid
