#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// A thin, typed wrapper over a POSIX file descriptor. It does not close itself: call `close()`.
///
/// Reads and writes are positional (`pread`/`pwrite`) so several threads can share one descriptor. Every
/// transfer loops until done: Linux moves at most 0x7ffff000 bytes per call, returns short counts on
/// signals, and `EINTR` is retried, never surfaced.
public struct FileDescriptor: Sendable, Hashable {
  /// The C descriptor.
  public let rawValue: Int32
  /// The path it was opened with, for error messages.
  public let path: String

  /// How to open a file.
  public enum Mode: Sendable {
    /// `O_RDONLY` of a regular file. The open never blocks (`O_NONBLOCK`: a FIFO or a device named like
    /// a checkpoint file would otherwise wait forever for a writer), and anything but a regular file
    /// (FIFO, socket, device, directory) is refused after `fstat`.
    case readOnly
    /// `O_RDWR | O_CREAT | O_TRUNC`, mode 0644: a fresh file.
    case createTruncating
    /// `O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0644: a new file, never an existing one and never
    /// through a symbolic link (temporary output names).
    case createExclusive
    /// `O_RDWR | O_CREAT`, mode 0644: create or reopen keeping contents.
    case readWriteCreating
    /// `O_RDWR`: an existing file.
    case readWrite
  }

  /// Opens `path` (`open(2)` with `O_CLOEXEC`).
  ///
  /// - Throws: `SystemError` for a failed `open`, or (code 0) for a `.readOnly` path that is not a regular
  ///   file.
  public static func open(_ path: String, _ mode: Mode) throws(SystemError) -> FileDescriptor {
    let flags: Int32
    switch mode {
    case .readOnly: flags = O_RDONLY | O_NONBLOCK | O_NOCTTY
    case .createTruncating: flags = O_RDWR | O_CREAT | O_TRUNC
    case .createExclusive: flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW
    case .readWriteCreating: flags = O_RDWR | O_CREAT
    case .readWrite: flags = O_RDWR
    }
    let fd = SystemCall.retrying { Glibc.open(path, flags | O_CLOEXEC, 0o644) }
    guard fd >= 0 else { throw SystemError("open", path: path) }
    let descriptor = FileDescriptor(rawValue: fd, path: path)
    if case .readOnly = mode {
      let kind: FileStatus.Kind
      do { kind = try descriptor.status().kind } catch {
        descriptor.close()
        throw error
      }
      guard kind == .regularFile else {
        descriptor.close()
        throw SystemError("read", path: path, code: 0, detail: "it is \(kind.phrase), not a regular file")
      }
    }
    return descriptor
  }

  /// `fstat` of the open file.
  public func status() throws(SystemError) -> FileStatus {
    var info = stat()
    guard fstat(rawValue, &info) == 0 else { throw SystemError("stat", path: path) }
    return FileStatus(info)
  }

  /// Closes the descriptor. Errors from `close` on a read-only file are not actionable and are ignored;
  /// writers call `sync()` first, which reports deferred write errors.
  public func close() { _ = Glibc.close(rawValue) }

  /// The file's size in bytes (`fstat`).
  public func byteCount() throws(SystemError) -> Int { try status().byteCount }

  /// Reads exactly `buffer.count` bytes starting at `fileOffset` (a `pread` loop).
  ///
  /// - Throws: `SystemError` on failure, or with `EIO` and a detail when the file ends early.
  public func read(into buffer: UnsafeMutableRawBufferPointer, at fileOffset: Int) throws(SystemError) {
    var done = 0
    while done < buffer.count {
      let chunk = min(buffer.count - done, 1 << 30)
      let n = SystemCall.retrying { pread(rawValue, buffer.baseAddress! + done, chunk, off_t(fileOffset + done)) }
      if n > 0 {
        done += n
      } else if n == 0 {
        throw SystemError("read", path: path, code: EIO, detail: "file ends at byte \(fileOffset + done), expected \(buffer.count - done) more bytes")
      } else {
        throw SystemError("read", path: path, detail: "at byte offset \(fileOffset + done)")
      }
    }
  }

  /// Writes all of `bytes` starting at `fileOffset` (a `pwrite` loop handling short writes and `EINTR`).
  public func write(_ bytes: UnsafeRawBufferPointer, at fileOffset: Int) throws(SystemError) {
    var done = 0
    while done < bytes.count {
      let chunk = min(bytes.count - done, 1 << 30)
      let n = SystemCall.retrying { pwrite(rawValue, bytes.baseAddress! + done, chunk, off_t(fileOffset + done)) }
      if n > 0 {
        done += n
      } else {
        let code = n == 0 ? EIO : errno
        throw SystemError("write", path: path, code: code, detail: "at byte offset \(fileOffset + done)")
      }
    }
  }

  /// Writes `bytes` at `fileOffset`.
  public func write(_ bytes: [UInt8], at fileOffset: Int) throws(SystemError) {
    let result: Result<Void, SystemError> = bytes.withUnsafeBytes { raw in
      Result { () throws(SystemError) in try write(raw, at: fileOffset) }
    }
    try result.get()
  }

  /// Sets the file's length (`ftruncate`): extends with a sparse hole or cuts.
  public func truncate(to byteCount: Int) throws(SystemError) {
    guard SystemCall.retrying({ ftruncate(rawValue, off_t(byteCount)) }) == 0 else {
      throw SystemError("resize", path: path, detail: "to \(byteCount) bytes")
    }
  }

  /// Flushes data and metadata to stable storage (`fsync`). Reports write errors deferred by the kernel.
  public func sync() throws(SystemError) {
    guard SystemCall.retrying({ fsync(rawValue) }) == 0 else { throw SystemError("sync", path: path) }
  }

  /// Starts writeback of the file's dirty pages without waiting for it to finish (`sync_file_range` with
  /// `SYNC_FILE_RANGE_WRITE`; it can block while the device's queue is full): the disk writes while the caller
  /// computes, so a later `sync()` has little left to wait for. Advisory, errors ignored (`sync()` reports
  /// them); a no-op where the file system keeps no dirty pages (tmpfs).
  public func startWriteback() {
    guard let syncFileRange = Self.syncFileRange else { return }
    _ = SystemCall.retrying { syncFileRange(rawValue, 0, 0, Self.syncFileRangeWrite) }
  }

  private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
  /// `SYNC_FILE_RANGE_WRITE` of `<fcntl.h>`.
  private static let syncFileRangeWrite: UInt32 = 2

  /// glibc's `sync_file_range`, looked up at run time: Swift's Glibc module hides `_GNU_SOURCE`
  /// declarations, and other C libraries may lack it (then no early writeback).
  private static let syncFileRange: SyncFileRange? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: SyncFileRange.self)
  }()

  /// Tells the kernel how bytes `range` of the file (nil: all of it) will be used (`posix_fadvise`); advisory,
  /// errors ignored. Applies to this open file description only.
  public func advise(_ pattern: FileAccessPattern, range: Range<Int>? = nil) {
    _ = posix_fadvise(rawValue, off_t(range?.lowerBound ?? 0), off_t(range?.count ?? 0), pattern.rawValue)
  }
}
