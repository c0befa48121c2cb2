// The ShardStore contract, written once and proved against every implementation: each
// test binary instantiates ShardStoreContractTest with the stores it can make (folder and
// memory stores in shard_store_test, a host over the network in net_test).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "storage/stores/shard_store.h"

namespace quid::contract {

// Distinct ids spread over the fan-out folders.
ShardId Id(uint32_t n);
// Deterministic bytes that differ by seed.
Bytes Pattern(size_t size, uint32_t seed);

// A fresh, empty folder for one test, removed afterwards.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Makes a new, empty store of `capacity_bytes` (0: as much as the backing allows) using
// `scratch_dir` (a fresh folder) for whatever it keeps. The pointer owns everything the
// store needs (a server, an event loop...).
using StoreMaker =
    std::function<std::shared_ptr<ShardStore>(const std::string& scratch_dir, uint64_t capacity)>;

struct ContractStore {
  std::string name;  // the instantiation's test-name suffix
  StoreMaker make;
};

class ShardStoreContractTest : public ::testing::TestWithParam<ContractStore> {
 protected:
  void SetUp() override;
  // Each call makes a store in a new folder, so a test may hold several at once.
  std::shared_ptr<ShardStore> MakeStore(uint64_t capacity_bytes);
  std::set<ShardId> Listed(ShardStore& store);

  TempDir tmp_;
  int stores_made_ = 0;
  std::shared_ptr<ShardStore> store_;
};

// For INSTANTIATE_TEST_SUITE_P's name generator.
inline std::string ContractStoreName(const ::testing::TestParamInfo<ContractStore>& info) {
  return info.param.name;
}

}  // namespace quid::contract
