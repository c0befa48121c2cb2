// EnvFileSystem: RocksDB's file system, carried out through quidfs's own disk seam (Env).
//
//   NewEnvFileSystem(env)  a rocksdb::FileSystem whose every path and file call goes to env.
//   NewRocksEnv(env)       a rocksdb::Env with that file system, and the threads and clock
//                          of rocksdb's default Env (rocksdb::NewCompositeEnv).
//
// Why: RocksDB 7.8 as Debian ships it has no fault-injection file system, so without this a
// power-loss test could not touch the metadata database at all. On a MemEnv a power loss
// drops every unsynced byte of RocksDB's WAL, MANIFEST, CURRENT and tables exactly as it
// drops the journal's, and a test sees what RocksDB really made durable. On PosixEnv it is
// the real disk, through the same code.
//
// Durability is env.h's contract: a writable file's Sync/Fsync is File::Sync, a directory's
// Fsync is Env::SyncDir. One addition: CreateDir and CreateDirIfMissing make the new
// folder's entry durable, because RocksDB never syncs the parent of the folder it creates
// and the whole database would otherwise vanish at the first power loss.
//
// RocksDB's info LOG goes nowhere: it is diagnostics, not data, and must not compete with
// the WAL for the disk. LinkFile, NumFileLinks and AreFilesSame are NotSupported (Env has no
// hard links); nothing RocksDB needs by default uses them.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <memory>

#include "storage/base/env.h"

namespace quid {

// `env` is not owned and must outlive the result (and every file opened through it).
std::shared_ptr<rocksdb::FileSystem> NewEnvFileSystem(Env* env);

// For rocksdb::Options::env. `env` must outlive the result and every DB opened with it.
std::unique_ptr<rocksdb::Env> NewRocksEnv(Env* env);

}  // namespace quid
