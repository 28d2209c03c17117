#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
import Synchronization

/// An output file that appears under its final name only when it is complete.
///
/// Bytes go to a temporary sibling (`.<name>.smelt-tmp`) in the same directory; `commit()` syncs it,
/// renames it over the final path and syncs the directory, so a crash leaves either the old state or the
/// complete file, never a half-written one under the real name. `abandon()` (also run by `deinit` when
/// not committed) removes the temporary file. Positional writes are safe from several threads at once.
public final class AtomicOutputFile: Sendable {
  /// The final path.
  public let path: String
  /// Where the bytes are written until `commit()`.
  public let temporaryPath: String
  private let descriptor: FileDescriptor
  private let state = Mutex(State.open)
  /// Bytes written since writeback was last started.
  private let unflushedBytes = Atomic(0)

  /// How many written bytes start a writeback: without it Linux holds up to a tenth of RAM dirty and the
  /// whole file waits for `commit()`'s sync, which then costs as long as computing it did.
  static let writebackInterval = 64 << 20

  private enum State { case open, committed, abandoned }

  /// The temporary name used for `path`: a hidden sibling, so that directory listings and globs such as
  /// `*.safetensors` never pick up partial output.
  public static func temporaryPath(for path: String) -> String {
    let (directory, name) = FileSystem.split(path)
    return FileSystem.join(directory, ".\(name).smelt-tmp")
  }

  /// Creates the temporary file for `path`, replacing a stale one (a killed run's). The file is created
  /// afresh (`O_EXCL | O_NOFOLLOW`), so a symbolic link planted under the temporary name is removed, never
  /// followed: Smelt writes only files it created.
  /// - Parameters:
  ///   - byteCount: if given, the file is sized up front (sparse), so writers can fill it out of order.
  ///   - permissions: permission bits to keep (a copied file's own): the file gets at most these and at
  ///     most what a new file gets under the umask (0644 narrowed by it, plus execute where that allows
  ///     reading), never more. Default: a new file's 0644 under the umask.
  public init(path: String, byteCount: Int? = nil, permissions: UInt32? = nil) throws(SystemError) {
    self.path = path
    self.temporaryPath = AtomicOutputFile.temporaryPath(for: path)
    _ = unlink(temporaryPath)
    descriptor = try FileDescriptor.open(temporaryPath, .createExclusive)
    CleanupRegistry.shared.register(temporaryPath)
    if let permissions {
      do throws(SystemError) {
        let created = try descriptor.status().permissions
        let allowed = created | (created & 0o444) >> 2
        guard fchmod(descriptor.rawValue, mode_t(permissions & allowed & 0o777)) == 0 else {
          throw SystemError("set permissions of", path: temporaryPath)
        }
      } catch {
        abandon()
        throw error
      }
    }
    if let byteCount {
      do { try descriptor.truncate(to: byteCount) } catch {
        abandon()
        throw error
      }
    }
  }

  deinit { abandon() }

  /// Writes `bytes` at `fileOffset` of the temporary file. Every `writebackInterval` bytes, the disk is
  /// asked to start writing what is there (`FileDescriptor.startWriteback`).
  public func write(_ bytes: UnsafeRawBufferPointer, at fileOffset: Int) throws(SystemError) {
    try descriptor.write(bytes, at: fileOffset)
    noteWritten(bytes.count)
  }

  /// Writes `bytes` at `fileOffset` of the temporary file.
  public func write(_ bytes: [UInt8], at fileOffset: Int) throws(SystemError) {
    try descriptor.write(bytes, at: fileOffset)
    noteWritten(bytes.count)
  }

  private func noteWritten(_ byteCount: Int) {
    let total = unflushedBytes.add(byteCount, ordering: .relaxed).newValue
    guard total >= Self.writebackInterval,
      unflushedBytes.compareExchange(expected: total, desired: 0, ordering: .relaxed).exchanged
    else { return }
    descriptor.startWriteback()
  }

  /// The underlying descriptor, for `copy_file_range` into the temporary file.
  public var fileDescriptor: FileDescriptor { descriptor }

  /// Syncs the data, renames the temporary file to `path` and syncs the directory.
  public func commit() throws(SystemError) {
    let proceed = state.withLock { current -> Bool in
      guard case .open = current else { return false }
      current = .committed
      return true
    }
    precondition(proceed, "commit() on an output file that was already committed or abandoned")
    do {
      try descriptor.sync()
      descriptor.close()
      try FileSystem.rename(temporaryPath, to: path)
      CleanupRegistry.shared.unregister(temporaryPath)
      FileSystem.syncDirectory(FileSystem.split(path).directory)
    } catch {
      _ = unlink(temporaryPath)
      CleanupRegistry.shared.unregister(temporaryPath)
      throw error
    }
  }

  /// Closes and removes the temporary file. Safe to call more than once.
  public func abandon() {
    let proceed = state.withLock { current -> Bool in
      guard case .open = current else { return false }
      current = .abandoned
      return true
    }
    guard proceed else { return }
    descriptor.close()
    _ = unlink(temporaryPath)
    CleanupRegistry.shared.unregister(temporaryPath)
  }
}
