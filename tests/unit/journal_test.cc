#include "storage/journal/journal.h"

#include "storage/base/mem_env.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <vector>

namespace quid {
namespace {

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

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

  // The file of journal segment `number`.
  std::filesystem::path SegmentFile(uint64_t number) const {
    char name[32];
    std::snprintf(name, sizeof(name), "%020llu.seg", static_cast<unsigned long long>(number));
    return dir_ / name;
  }
  // Two 100-byte records, never synced; returns their segment.
  uint64_t AppendTwoRecords() {
    std::vector<JournalRecord> none;
    auto j = OpenKeeping(&none);
    auto first = j->AppendWrite(1, 0, Pattern(100, 1), 1);
    EXPECT_TRUE(first.ok());
    EXPECT_TRUE(j->AppendWrite(1, 100, Pattern(100, 2), 2).ok());
    return first.ok() ? first->segment : 0;
  }

  std::filesystem::path dir_;
  JournalOptions options_;
};

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

TEST_F(JournalTest, DamageInTheMiddleIsReportedAndLaterRecordsStillReplay) {
  uint64_t segment = 0;
  {
    std::vector<JournalRecord> none;
    auto j = OpenKeeping(&none);
    ASSERT_TRUE(j->AppendWrite(1, 0, Pattern(100, 1), 1).ok());
    auto second = j->AppendWrite(1, 100, Pattern(100, 2), 2);
    ASSERT_TRUE(second.ok());
    segment = second->segment;
    ASSERT_TRUE(j->Sync().ok());
    ASSERT_TRUE(j->AppendWrite(1, 200, Pattern(100, 3), 3).ok());
    ASSERT_TRUE(j->Sync().ok());
  }
  // Flip a payload byte of the second record: its checksum no longer holds, but the third
  // record after it is intact and was synced.
  const std::filesystem::path name = SegmentFile(segment);
  int fd = ::open(name.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t byte = 0;
  const off_t at = static_cast<off_t>(kJournalHeaderBytes * 2 + 100 + 10);
  ASSERT_EQ(::pread(fd, &byte, 1, at), 1);
  byte ^= 0xff;
  ASSERT_EQ(::pwrite(fd, &byte, 1, at), 1);
  ::close(fd);

  std::vector<JournalRecord> seen;
  auto j = OpenKeeping(&seen);
  ASSERT_EQ(seen.size(), 2u);  // the synced record after the damage is not thrown away
  EXPECT_EQ(seen[0].offset, 0u);
  EXPECT_EQ(seen[1].offset, 200u);
  ASSERT_EQ(j->damage().size(), 1u);
  const JournalDamage& d = j->damage()[0];
  EXPECT_EQ(d.segment, segment);
  EXPECT_EQ(d.offset, kJournalHeaderBytes + 100);
  EXPECT_EQ(d.length, kJournalHeaderBytes + 100);
  EXPECT_EQ(d.first_seq, seen[0].seq + 1);
  EXPECT_EQ(d.last_seq, seen[1].seq - 1);
  EXPECT_TRUE(d.synced);  // record 3 was appended after record 2 had been synced
  EXPECT_NE(d.ToString().find("which had been synced"), std::string::npos);
  EXPECT_EQ(j->torn_bytes(), 0u);
}

TEST_F(JournalTest, DamageInAnEarlierSegmentIsNeverATornTail) {
  options_.segment_bytes = 200;  // one record per segment
  std::vector<uint64_t> segments;
  {
    std::vector<JournalRecord> none;
    auto j = OpenKeeping(&none);
    for (int i = 0; i < 3; ++i) {
      auto r = j->AppendWrite(1, i * 100, Pattern(100, static_cast<uint8_t>(i)), i);
      ASSERT_TRUE(r.ok());
      segments.push_back(r->segment);
    }
  }
  ASSERT_EQ(segments.size(), 3u);
  ASSERT_NE(segments[0], segments[1]);
  // Cut the middle segment short: nothing follows the damage inside that file, but it is
  // not the newest segment, so it was synced before the next began.
  const std::filesystem::path name = SegmentFile(segments[1]);
  std::filesystem::resize_file(name, kJournalHeaderBytes + 50);
  std::vector<JournalRecord> seen;
  auto j = OpenKeeping(&seen);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].offset, 200u);
  ASSERT_EQ(j->damage().size(), 1u);
  EXPECT_EQ(j->damage()[0].segment, segments[1]);
  EXPECT_EQ(j->damage()[0].first_seq, seen[0].seq + 1);
  EXPECT_EQ(j->damage()[0].last_seq, seen[1].seq - 1);
  EXPECT_TRUE(j->damage()[0].synced);
}

TEST_F(JournalTest, TornTailIsCutOffQuietly) {
  const std::filesystem::path name = SegmentFile(AppendTwoRecords());
  // Garbage where the unsynced second record was: not a record, nothing intact after it.
  int fd = ::open(name.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const Bytes junk(80, 0xab);
  ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), kJournalHeaderBytes + 100), 80);
  ::close(fd);
  std::vector<JournalRecord> seen;
  auto j = OpenKeeping(&seen);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_TRUE(j->damage().empty());
  EXPECT_EQ(j->torn_bytes(), kJournalHeaderBytes + 100);
  EXPECT_EQ(std::filesystem::file_size(name), kJournalHeaderBytes + 100);
}

TEST_F(JournalTest, TruncatedFileLosesOnlyThePartialRecord) {
  const std::filesystem::path name = SegmentFile(AppendTwoRecords());
  std::filesystem::resize_file(name, kJournalHeaderBytes * 2 + 100 + 30);
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

TEST_F(JournalTest, OnceFullAndOutOfTimeLaterWritesFailAtOnceUntilRoomIsFreed) {
  options_.capacity_bytes = 8192;
  options_.segment_bytes = 4096;
  options_.full_wait_ns = 300'000'000;
  std::vector<JournalRecord> none;
  auto j = OpenKeeping(&none);
  std::vector<JournalRecord> held;
  for (int i = 0; i < 10; ++i) {
    auto r = j->AppendWrite(1, 0, Pattern(3000, 1), 1);
    if (!r.ok()) break;
    held.push_back(*r);
  }
  ASSERT_GE(held.size(), 2u);
  EXPECT_TRUE(j->out_of_space());

  // A second writer that arrives now does not wait the whole time again.
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(j->AppendWrite(2, 0, Pattern(3000, 2), 1).status().code(), Code::kNoSpace);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  EXPECT_EQ(j->waiting_appends(), 0);

  // The flusher stores what the oldest segment held: room again, and writes succeed.
  for (const JournalRecord& r : held) j->Release(r.segment, 1);
  EXPECT_FALSE(j->out_of_space());
  EXPECT_TRUE(j->AppendWrite(3, 0, Pattern(3000, 3), 1).ok());
}

TEST_F(JournalTest, SequenceContinuesAboveTheFloorWhenEmpty) {
  options_.min_seq = 1000;
  std::vector<JournalRecord> none;
  auto j = OpenKeeping(&none);
  auto r = j->AppendWrite(1, 0, Pattern(10, 1), 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq, 1001u);
}

// --- on the simulated disk: power loss and failing syncs ---------------------------------

class JournalPowerLossTest : public ::testing::Test {
 protected:
  JournalPowerLossTest() {
    options_.dir = "/home/journal";
    options_.env = &env_;
    options_.segment_bytes = 4096;
  }
  std::unique_ptr<Journal> Open(std::vector<JournalRecord>* seen) {
    auto j = Journal::Open(options_, [&](Journal* journal, const JournalRecord& r) {
      journal->AddRef(r.segment, 1);
      seen->push_back(r);
    });
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? std::move(j).value() : nullptr;
  }
  MemEnv env_;
  JournalOptions options_;
};

TEST_F(JournalPowerLossTest, SyncedRecordsSurviveUnsyncedOnesGoAndNothingIsCalledDamage) {
  {
    std::vector<JournalRecord> none;
    auto j = Open(&none);
    ASSERT_TRUE(j);
    for (int i = 0; i < 5; ++i)  // spans two segments
      ASSERT_TRUE(j->AppendWrite(1, i * 1000, Pattern(1000, static_cast<uint8_t>(i)), i).ok());
    ASSERT_TRUE(j->Sync().ok());
    for (int i = 5; i < 9; ++i)
      ASSERT_TRUE(j->AppendWrite(1, i * 1000, Pattern(1000, static_cast<uint8_t>(i)), i).ok());
    env_.PowerLoss();
  }
  std::vector<JournalRecord> seen;
  auto j = Open(&seen);
  ASSERT_TRUE(j);
  ASSERT_GE(seen.size(), 5u);
  for (size_t i = 0; i < seen.size(); ++i) {
    Bytes got(1000);
    ASSERT_TRUE(j->ReadData(seen[i].segment, seen[i].data_offset, got).ok());
    EXPECT_EQ(got, Pattern(1000, static_cast<uint8_t>(seen[i].offset / 1000)));
  }
  EXPECT_TRUE(j->damage().empty());
}

TEST_F(JournalPowerLossTest, FailedSyncIsNeverReportedAsDurableLater) {
  std::vector<JournalRecord> none;
  auto j = Open(&none);
  ASSERT_TRUE(j);
  auto first = j->AppendWrite(1, 0, Pattern(100, 1), 1);
  ASSERT_TRUE(first.ok());
  bool fail = true;
  env_.SetHook([&](EnvOp op, const std::string&) {
    if (op == EnvOp::kSync && fail) return Status::IoError("injected: fdatasync failed");
    return Status::Ok();
  });
  EXPECT_EQ(j->Sync().code(), Code::kIoError);
  fail = false;  // the disk "recovers": fdatasync on the same file would now return 0
  EXPECT_EQ(j->Sync().code(), Code::kIoError);  // but those pages may be gone: still EIO
  // New writes go to a fresh segment and can be synced; the old records still fail Sync.
  auto second = j->AppendWrite(1, 100, Pattern(100, 2), 2);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->segment, first->segment);
  EXPECT_EQ(j->Sync().code(), Code::kIoError);
  // Once the failed segment's records are stored elsewhere and released, Sync is clean.
  j->Release(first->segment, 1);
  EXPECT_TRUE(j->Sync().ok());
  j->Release(second->segment, 1);
}

}  // namespace
}  // namespace quid
