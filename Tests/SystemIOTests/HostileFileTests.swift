// Files that change or are not what their names say: truncation under a mapping, FIFOs and devices where a
// regular file is expected, lock-file races, planted symbolic links, copied permissions.
import Testing
@testable import SystemIO

#if canImport(Glibc)
  import Glibc
#endif

private func scratchDirectory(_ name: String = #function) throws -> String {
  let base = "/tmp/smelt-tests-\(getpid())"
  let path = FileSystem.join(base, "hostile-" + name.filter { $0.isLetter || $0.isNumber })
  try FileSystem.removeTree(path)
  try FileSystem.createDirectory(path)
  return path
}

@Suite("System I/O on hostile files") struct HostileFileTests {
  // Issue 15 item 1: another process truncating a mapped input raised SIGBUS (exit 135).
  @Test("reading a mapped file truncated underneath reads zeros, flags the mapping and never raises SIGBUS")
  func truncatedUnderMapping() throws {
    let dir = try scratchDirectory()
    let path = FileSystem.join(dir, "shard.bin")
    let size = 64 << 12
    try FileSystem.writeFileAtomically([UInt8](repeating: 0xAB, count: size), to: path)
    let mapping = try MappedFile(path: path)
    try mapping.checkUnchanged()
    #expect(mapping.bytes[size - 1] == 0xAB)
    mapping.advise(.dontNeed)  // drop the pages this process has, as a long conversion does

    let fd = try FileDescriptor.open(path, .readWrite)
    try fd.truncate(to: 10_000)
    fd.close()

    // The first page survives; everything past the new end (and its page) reads as zeros, no signal.
    #expect(mapping.bytes[0] == 0xAB)
    var sum = 0
    for offset in stride(from: 12_288, to: size, by: 4096) { sum += Int(mapping.bytes[offset]) }
    #expect(sum == 0)
    #expect(mapping.wasTruncated)
    do {
      try mapping.checkNotTruncated()
      Issue.record("a truncated mapping must not pass its check")
    } catch {
      #expect(error.description.contains(path) && error.description.contains("truncated while smelt was reading it"), "\(error)")
    }
    #expect(throws: SystemError.self) { try mapping.checkUnchanged() }
  }

  @Test("a file rewritten in place or replaced after mapping fails the thorough check, not the cheap one")
  func changedUnderMapping() throws {
    let dir = try scratchDirectory()
    let path = FileSystem.join(dir, "shard.bin")
    try FileSystem.writeFileAtomically([UInt8](repeating: 1, count: 4096), to: path)
    let mapping = try MappedFile(path: path)
    // Same size, new bytes, later modification time (set explicitly: the clock may not tick in between).
    let fd = try FileDescriptor.open(path, .readWrite)
    try fd.write([2], at: 0)
    var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
    #expect(futimens(fd.rawValue, &times) == 0)
    fd.close()
    try mapping.checkNotTruncated()
    #expect(throws: SystemError.self) { try mapping.checkUnchanged() }

    let other = FileSystem.join(dir, "other.bin")
    try FileSystem.writeFileAtomically([UInt8](repeating: 1, count: 4096), to: other)
    let second = try MappedFile(path: other)
    try FileSystem.writeFileAtomically([UInt8](repeating: 1, count: 4096), to: other)  // a new inode
    do {
      try second.checkUnchanged()
      Issue.record("a replaced file must fail the check")
    } catch {
      #expect(error.description.contains("replaced"), "\(error)")
    }
  }

  @Test("many mappings come and go; each keeps its own truncation flag")
  func mappingSlotsAreReused() throws {
    let dir = try scratchDirectory()
    let path = FileSystem.join(dir, "small.bin")
    try FileSystem.writeFileAtomically([UInt8](repeating: 7, count: 8192), to: path)
    for _ in 0..<(MappingFaults.capacity + 10) {
      let mapping = try MappedFile(path: path)
      #expect(!mapping.wasTruncated)
    }
  }

  // Issue 15 item 7: `open` of a FIFO named config.json blocked forever.
  @Test("reading a FIFO, a directory or a device where a file is expected is refused at once")
  func nonRegularFiles() throws {
    let dir = try scratchDirectory()
    let fifo = FileSystem.join(dir, "config.json")
    #expect(mkfifo(fifo, 0o644) == 0)
    for path in [fifo, dir, "/dev/zero"] {
      do {
        _ = try FileSystem.readFile(path)
        Issue.record("\(path) must be refused")
      } catch {
        #expect(error.code == 0 && error.description.contains("not a regular file"), "\(error)")
      }
      #expect(throws: SystemError.self) { _ = try MappedFile(path: path) }
    }
    do {
      _ = try MappedFile(path: fifo)
    } catch {
      #expect(error.description.contains("named pipe (FIFO)"), "\(error)")
    }
  }

  // Issue 15 item 10: the lock file was unlinked while locked, so two writers could both hold it.
  @Test("a lock taken on a lock file that its holder unlinked in between is retried, never shared")
  func lockRace() throws {
    let dir = try scratchDirectory()
    let first = try DirectoryLock(directory: dir)
    var third: DirectoryLock?
    // Between the second taker's open and its flock, the holder releases (unlinking the file) and a third
    // process takes a fresh lock file. The second must not end up holding the unlinked inode.
    let second = Result {
      try DirectoryLock(directory: dir, access: .exclusive) {
        guard third == nil else { return }
        first.release()
        third = try? DirectoryLock(directory: dir)
      }
    }
    #expect(third != nil)
    guard case .failure(let error) = second else {
      Issue.record("two holders of one directory lock")
      return
    }
    #expect(error is DirectoryLock.HeldError, "\(error)")
    third?.release()
    #expect(!DirectoryLock.isHeldByAnyone(directory: dir))
  }

  @Test("shared holders coexist, exclude an exclusive taker, and leave the lock file in place")
  func sharedLock() throws {
    let dir = try scratchDirectory()
    let a = try DirectoryLock(directory: dir, access: .shared)
    let b = try DirectoryLock(directory: dir, access: .shared)
    #expect(throws: DirectoryLock.HeldError.self) { _ = try DirectoryLock(directory: dir) }
    #expect(DirectoryLock.isHeldByAnyone(directory: dir))
    a.releaseKeepingFile()
    b.releaseKeepingFile()
    let exclusive = try DirectoryLock(directory: dir)
    #expect(throws: DirectoryLock.HeldError.self) { _ = try DirectoryLock(directory: dir, access: .shared) }
    exclusive.release()
    #expect(!FileSystem.exists(FileSystem.join(dir, DirectoryLock.fileName)))
  }

  @Test("a symbolic link planted under a temporary output name is replaced, never written through")
  func plantedTemporaryLink() throws {
    let dir = try scratchDirectory()
    let victim = FileSystem.join(dir, "victim.txt")
    try FileSystem.writeFileAtomically(Array("keep me".utf8), to: victim)
    let output = FileSystem.join(dir, "model.safetensors")
    #expect(symlink(victim, AtomicOutputFile.temporaryPath(for: output)) == 0)
    let file = try AtomicOutputFile(path: output)
    try file.write([1, 2, 3], at: 0)
    try file.commit()
    #expect(try FileSystem.readFile(victim) == Array("keep me".utf8))
    #expect(try FileSystem.readFile(output) == [1, 2, 3])
  }

  // Issue 15 item 14: a copied sidecar came out world-readable whatever the source's mode.
  @Test("a copied file keeps its permission bits, never wider")
  func copyKeepsPermissions() throws {
    let dir = try scratchDirectory()
    let secret = FileSystem.join(dir, "secret.txt")
    try FileSystem.writeFileAtomically(Array("x".utf8), to: secret)
    #expect(chmod(secret, 0o600) == 0)
    let copy = FileSystem.join(dir, "copy.txt")
    try FileSystem.copyFile(secret, to: copy)
    #expect(FileSystem.status(of: copy)?.permissions == 0o600)
    #expect(chmod(secret, 0o4777) == 0)  // setuid and world-writable: neither survives the copy
    try FileSystem.copyFile(secret, to: copy)
    let mode = FileSystem.status(of: copy)?.permissions ?? 0
    #expect(mode & 0o4000 == 0 && mode & 0o002 == 0, "mode \(String(mode, radix: 8))")
  }

  @Test("isWithin sees through symbolic links to the real directory")
  func withinThroughLinks() throws {
    let dir = try scratchDirectory()
    let real = FileSystem.join(dir, "real")
    try FileSystem.createDirectory(real)
    try FileSystem.writeFileAtomically([1], to: FileSystem.join(real, "a.bin"))
    let links = FileSystem.join(dir, "links")
    try FileSystem.createDirectory(links)
    #expect(symlink(FileSystem.join(real, "a.bin"), FileSystem.join(links, "a.bin")) == 0)
    let realIdentity = try #require(FileSystem.status(of: real)?.identity)
    #expect(FileSystem.isWithin(FileSystem.join(links, "a.bin"), directory: realIdentity))
    #expect(!FileSystem.isWithin(links, directory: realIdentity))
  }
}
