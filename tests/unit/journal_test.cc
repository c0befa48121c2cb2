#include "storage/journal/journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

namespace quid {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("journal_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    options_.dir = dir_.string();
    options_.segment_bytes = 4096;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Journal> OpenKeeping(std::vector<JournalRecord>* seen) {
    auto j = Journal::Open(options_, [&](Journal* journal, const JournalRecord& r) {
      journal->AddRef(r.segment, 1);
      seen->push_back(r);
    });
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return std::move(j).value();
  }

  std::filesystem::path dir_;
  JournalOptions options_;
};

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

TEST_F(JournalTest, ReplaysEveryRecordWithItsBytes) {
  {
    std::vector<JournalRecord> none;
    auto j = OpenKeeping(&none);
    ASSERT_TRUE(j->AppendWrite(7, 100, Pattern(1000, 1), 5).ok());
    ASSERT_TRUE(j->AppendTruncate(7, 50, 6).ok());
    ASSERT_TRUE(j->AppendWrite(8, 0, Pattern(3000, 2), 7).ok());  // forces a new segment
    ASSERT_TRUE(j->Sync().ok());
  }
  std::vector<JournalRecord> seen;
  auto j = OpenKeeping(&seen);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].type, JournalRecordType::kWrite);
  EXPECT_EQ(seen[0].offset, 100u);
  EXPECT_EQ(seen[1].type, JournalRecordType::kTruncate);
  EXPECT_EQ(seen[1].offset, 50u);
  EXPECT_LT(seen[0].seq, seen[1].seq);
  EXPECT_LT(seen[1].seq, seen[2].seq);
  Bytes got(3000);
  ASSERT_TRUE(j->ReadData(seen[2].segment, seen[2].data_offset, got).ok());
  EXPECT_EQ(got, Pattern(3000, 2));
  // New appends continue the sequence.
  auto r = j->AppendWrite(9, 0, Pattern(10, 3), 8);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->seq, seen[2].seq);
}

TEST_F(JournalTest, TornTailIsDroppedAndLaterRecordsToo) {
  uint64_t segment = 0;
  {
    std::vector<JournalRecord> none;
    auto j = OpenKeeping(&none);
    ASSERT_TRUE(j->AppendWrite(1, 0, Pattern(100, 1), 1).ok());
    auto second = j->AppendWrite(1, 100, Pattern(100, 2), 2);
    ASSERT_TRUE(second.ok());
    segment = second->segment;
    ASSERT_TRUE(j->Sync().ok());
  }
  // Flip a payload byte of the second record: its checksum no longer holds.
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.seg", static_cast<unsigned long long>(segment));
  int fd = ::open((dir_ / name).c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t byte = 0;
  const off_t at = static_cast<off_t>(kJournalHeaderBytes * 2 + 100 + 10);
  ASSERT_EQ(::pread(fd, &byte, 1, at), 1);
  byte ^= 0xff;
  ASSERT_EQ(::pwrite(fd, &byte, 1, at), 1);
  ::close(fd);

  std::vector<JournalRecord> seen;
  auto j = OpenKeeping(&seen);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].offset, 0u);
}

TEST_F(JournalTest, TruncatedFileLosesOnlyThePartialRecord) {
  uint64_t segment = 0;
  {
    std::vector<JournalRecord> none;
    auto j = OpenKeeping(&none);
    auto first = j->AppendWrite(1, 0, Pattern(100, 1), 1);
    ASSERT_TRUE(first.ok());
    segment = first->segment;
    ASSERT_TRUE(j->AppendWrite(1, 100, Pattern(100, 2), 2).ok());
  }
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.seg", static_cast<unsigned long long>(segment));
  std::filesystem::resize_file(dir_ / name, kJournalHeaderBytes * 2 + 100 + 30);
  std::vector<JournalRecord> seen;
  auto j = OpenKeeping(&seen);
  EXPECT_EQ(seen.size(), 1u);
}

TEST_F(JournalTest, SegmentsAreDeletedInOrderOnceReleased) {
  std::vector<JournalRecord> none;
  auto j = OpenKeeping(&none);
  std::vector<JournalRecord> records;
  for (int i = 0; i < 6; ++i) {
    auto r = j->AppendWrite(1, i * 3000, Pattern(3000, static_cast<uint8_t>(i)), i);
    ASSERT_TRUE(r.ok());
    records.push_back(*r);
  }
  const size_t before = j->segment_count();
  EXPECT_GE(before, 6u);
  // Releasing a later segment first frees nothing: deletion is in order.
  j->Release(records[1].segment, 1);
  EXPECT_EQ(j->segment_count(), before);
  j->Release(records[0].segment, 1);
  EXPECT_EQ(j->segment_count(), before - 2);
  Bytes got(3000);
  EXPECT_FALSE(j->ReadData(records[0].segment, records[0].data_offset, got).ok());
  EXPECT_TRUE(j->ReadData(records[2].segment, records[2].data_offset, got).ok());
}

TEST_F(JournalTest, FullJournalRefusesAfterWaiting) {
  options_.capacity_bytes = 8192;
  options_.full_wait_ns = 50'000'000;
  std::vector<JournalRecord> none;
  auto j = OpenKeeping(&none);
  Status last;
  for (int i = 0; i < 10 && last.ok(); ++i)
    last = j->AppendWrite(1, 0, Pattern(3000, 1), 1).status();
  EXPECT_EQ(last.code(), Code::kNoSpace);
}

TEST_F(JournalTest, SequenceContinuesAboveTheFloorWhenEmpty) {
  options_.min_seq = 1000;
  std::vector<JournalRecord> none;
  auto j = OpenKeeping(&none);
  auto r = j->AppendWrite(1, 0, Pattern(10, 1), 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq, 1001u);
}

}  // namespace
}  // namespace quid
