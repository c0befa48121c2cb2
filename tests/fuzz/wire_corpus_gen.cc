// Writes the seed corpora of the wire targets (frame_reader_fuzz, request_fuzz,
// response_fuzz): one input per operation and result, plus the edge cases the decoders
// must refuse, so fuzzing starts from inputs that reach deep into the host. Run by hand
// when the messages change, then commit the files:
//   wire_corpus_gen tests/fuzz/corpus
// Inputs found by fuzzing (crash regressions) live beside these and are never rewritten.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "net/wire.h"
#include "storage/erasure/checksum.h"
#include "tests/fuzz/corpus_file.h"

namespace quid::net {
namespace {

bool Write(const std::string& path, ByteSpan bytes) {
  return WriteCorpusFile(path, bytes);
}

bool WriteMessage(const std::string& path, const google::protobuf::MessageLite& header,
                  ByteSpan payload = {}) {
  Result<Bytes> plain = EncodeMessage(header, payload, 0);
  if (!plain.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), plain.status().ToString().c_str());
    return false;
  }
  return Write(path, *plain);
}

std::string Id(char fill) {
  return std::string(16, fill);
}

Bytes Payload(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + 1);
  return b;
}

bool WriteRequestSeeds(const std::string& dir) {
  bool ok = true;
  // Request ids: 2 mod 3 is the stranger in request_fuzz; the rest the admitted tenant.
  wire::Request ping;
  ping.set_id(1);
  ping.mutable_ping();
  ok &= WriteMessage(dir + "/ping", ping);

  Bytes data = Payload(300);
  wire::Request put;
  put.set_id(3);
  put.mutable_put()->set_shard_id(Id('a'));
  put.mutable_put()->set_crc32c(Crc32c(data));
  ok &= WriteMessage(dir + "/put", put, data);

  wire::Request bad_crc = put;
  bad_crc.mutable_put()->set_crc32c(Crc32c(data) ^ 1);
  ok &= WriteMessage(dir + "/put_bad_crc", bad_crc, data);

  wire::Request short_id = put;
  short_id.mutable_put()->set_shard_id("short");
  ok &= WriteMessage(dir + "/put_short_id", short_id, data);

  wire::Request stranger = put;
  stranger.set_id(2);
  ok &= WriteMessage(dir + "/put_stranger", stranger, data);

  wire::Request get;
  get.set_id(4);
  get.mutable_get()->set_shard_id(Id('a'));
  get.mutable_get()->set_whole(true);
  ok &= WriteMessage(dir + "/get_whole", get);

  wire::Request range;
  range.set_id(6);
  range.mutable_get()->set_shard_id(Id('a'));
  range.mutable_get()->set_offset(100);
  range.mutable_get()->set_length(50);
  ok &= WriteMessage(dir + "/get_range", range);

  wire::Request del;
  del.set_id(7);
  del.mutable_delete_()->set_shard_id(Id('a'));
  ok &= WriteMessage(dir + "/delete", del);

  wire::Request stat;
  stat.set_id(9);
  stat.mutable_stat()->set_shard_id(Id('a'));
  ok &= WriteMessage(dir + "/stat", stat);

  wire::Request list;
  list.set_id(10);
  list.mutable_list()->set_after(Id('0'));
  list.mutable_list()->set_limit(5);
  ok &= WriteMessage(dir + "/list", list);

  wire::Request usage;
  usage.set_id(12);
  usage.mutable_usage();
  ok &= WriteMessage(dir + "/usage", usage);

  wire::Request empty;
  ok &= WriteMessage(dir + "/empty_request", empty);
  Bytes truncated = {0x40, 0, 0, 0, 0x08};
  ok &= Write(dir + "/header_beyond_buffer", truncated);
  return ok;
}

bool WriteResponseSeeds(const std::string& dir) {
  bool ok = true;
  wire::Response plain_ok;
  plain_ok.set_id(1);
  ok &= WriteMessage(dir + "/ok", plain_ok);

  wire::Response with_payload;
  with_payload.set_id(2);
  ok &= WriteMessage(dir + "/ok_with_payload", with_payload, Payload(200));

  wire::Response error;
  error.set_id(3);
  SetStatus(&error, Status::NoSpace("host full: 10 of 10 bytes used"));
  ok &= WriteMessage(dir + "/no_space", error);

  wire::Response unknown;
  unknown.set_id(4);
  unknown.set_code(1000);
  unknown.set_message("from the future");
  ok &= WriteMessage(dir + "/unknown_code", unknown);

  wire::Response info;
  info.set_id(5);
  info.mutable_info()->set_size(4096);
  info.mutable_info()->set_mtime_ns(1'700'000'000'000'000'000);
  ok &= WriteMessage(dir + "/info", info);

  wire::Response list;
  list.set_id(6);
  for (char c : {'a', 'b', 'c'}) {
    wire::ListEntry* e = list.mutable_list()->add_entries();
    e->set_shard_id(Id(c));
    e->set_size(100);
    e->set_mtime_ns(1);
  }
  list.mutable_list()->set_more(true);
  ok &= WriteMessage(dir + "/list", list);

  wire::Response usage;
  usage.set_id(7);
  usage.mutable_usage()->set_used_bytes(1000);
  usage.mutable_usage()->set_capacity_bytes(5000);
  usage.mutable_usage()->set_shard_count(3);
  ok &= WriteMessage(dir + "/usage", usage);
  return ok;
}

// frame_reader_fuzz input: a control byte (low 7 bits + 1 = bytes appended next; the
// high bit switches the maximum between 64 and 4096 bytes first), then those bytes.
void AppendScript(Bytes& script, ByteSpan stream, size_t chunk, bool switch_first) {
  for (size_t at = 0; at < stream.size(); at += chunk) {
    size_t n = std::min(chunk, stream.size() - at);
    script.push_back(static_cast<uint8_t>((n - 1) | (switch_first && at == 0 ? 0x80 : 0)));
    script.insert(script.end(), stream.begin() + static_cast<ptrdiff_t>(at),
                  stream.begin() + static_cast<ptrdiff_t>(at + n));
  }
}

Bytes Frames(const std::vector<size_t>& sizes) {
  Bytes stream;
  for (size_t size : sizes) {
    Bytes f = WithLengthPrefix(Payload(size));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  return stream;
}

bool WriteFrameReaderSeeds(const std::string& dir) {
  bool ok = true;
  Bytes script;
  AppendScript(script, Frames({10, 20, 5}), 128, false);
  ok &= Write(dir + "/several_in_one_append", script);

  script.clear();
  AppendScript(script, Frames({60, 1, 33}), 7, false);
  ok &= Write(dir + "/split_frames", script);

  script.clear();
  AppendScript(script, Frames({40}), 128, false);
  AppendScript(script, Frames({1000, 2000}), 100, true);
  ok &= Write(dir + "/switch_to_large", script);

  script.clear();
  Bytes oversized = {0, 0, 0, 65};
  AppendScript(script, oversized, 4, false);
  ok &= Write(dir + "/oversized", script);

  script.clear();
  Bytes zero = {0, 0, 0, 0};
  AppendScript(script, zero, 4, false);
  ok &= Write(dir + "/empty_frame", script);
  return ok;
}

}  // namespace
}  // namespace quid::net

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  std::string root = argv[1];
  bool ok = quid::net::WriteRequestSeeds(root + "/request_fuzz") &&
            quid::net::WriteResponseSeeds(root + "/response_fuzz") &&
            quid::net::WriteFrameReaderSeeds(root + "/frame_reader_fuzz");
  return ok ? 0 : 1;
}
