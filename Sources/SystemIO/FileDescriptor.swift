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
    /// `O_RDONLY`.
    case readOnly
    /// `O_RDWR | O_CREAT | O_TRUNC`, mode 0644: a fresh file.
    case createTruncating
    /// `O_RDWR | O_CREAT`, mode 0644: create or reopen keeping contents.
    case readWriteCreating
    /// `O_RDWR`: an existing file.
    case readWrite
  }

  /// Opens `path` (`open(2)` with `O_CLOEXEC`).
  public static func open(_ path: String, _ mode: Mode) throws(SystemError) -> FileDescriptor {
    let flags: Int32
    switch mode {
    case .readOnly: flags = O_RDONLY
    case .createTruncating: flags = O_RDWR | O_CREAT | O_TRUNC
    case .readWriteCreating: flags = O_RDWR | O_CREAT
    case .readWrite: flags = O_RDWR
    }
    while true {
      let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
      if fd >= 0 { return FileDescriptor(rawValue: fd, path: path) }
      if errno == EINTR { continue }
      throw SystemError("open", path: path)
    }
  }

  /// Closes the descriptor. Errors from `close` on a read-only file are not actionable and are ignored;
  /// writers call `sync()` first, which reports deferred write errors.
  public func close() { _ = Glibc.close(rawValue) }

  /// The file's size in bytes (`fstat`).
  public func byteCount() throws(SystemError) -> Int {
    var info = stat()
    guard fstat(rawValue, &info) == 0 else { throw SystemError("stat", path: path) }
    return Int(info.st_size)
  }

  /// Reads exactly `buffer.count` bytes starting at `fileOffset` (a `pread` loop).
  ///
  /// - Throws: `SystemError` on failure, or with `EIO` and a detail when the file ends early.
  public func read(into buffer: UnsafeMutableRawBufferPointer, at fileOffset: Int) throws(SystemError) {
    var done = 0
    while done < buffer.count {
      let chunk = min(buffer.count - done, 1 << 30)
      let n = pread(rawValue, buffer.baseAddress! + done, chunk, off_t(fileOffset + done))
      if n > 0 {
        done += n
      } else if n == 0 {
        throw SystemError("read", path: path, code: EIO, detail: "file ends at byte \(fileOffset + done), expected \(buffer.count - done) more bytes")
      } else if errno != EINTR {
        throw SystemError("read", path: path, detail: "at byte offset \(fileOffset + done)")
      }
    }
  }

  /// Writes all of `bytes` starting at `fileOffset` (a `pwrite` loop handling short writes and `EINTR`).
  public func write(_ bytes: UnsafeRawBufferPointer, at fileOffset: Int) throws(SystemError) {
    var done = 0
    while done < bytes.count {
      let chunk = min(bytes.count - done, 1 << 30)
      let n = pwrite(rawValue, bytes.baseAddress! + done, chunk, off_t(fileOffset + done))
      if n > 0 {
        done += n
      } else if n < 0 && errno == EINTR {
        continue
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
    while ftruncate(rawValue, off_t(byteCount)) != 0 {
      if errno != EINTR { throw SystemError("resize", path: path, detail: "to \(byteCount) bytes") }
    }
  }

  /// Flushes data and metadata to stable storage (`fsync`). Reports write errors deferred by the kernel.
  public func sync() throws(SystemError) {
    while fsync(rawValue) != 0 {
      if errno != EINTR { throw SystemError("sync", path: path) }
    }
  }

  /// Tells the kernel how the file will be read (`posix_fadvise`); advisory, errors ignored.
  public func advise(_ advice: Int32, offset: Int = 0, byteCount: Int = 0) {
    _ = posix_fadvise(rawValue, off_t(offset), off_t(byteCount), advice)
  }
}
