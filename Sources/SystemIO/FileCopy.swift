#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// File-to-file byte copies that stay in the kernel where possible.
public enum FileCopy {
  private typealias CopyFileRange = @convention(c) (
    Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32
  ) -> Int

  /// glibc's `copy_file_range`, looked up at run time: Swift's Glibc module hides `_GNU_SOURCE`
  /// declarations, and old C libraries lack the symbol (then the user-space fallback is used).
  private static let kernelCopy: CopyFileRange? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "copy_file_range") else { return nil }
    return unsafeBitCast(symbol, to: CopyFileRange.self)
  }()

  /// Copies `byteCount` bytes from `source` at `sourceOffset` to `destination` at `destinationOffset`.
  ///
  /// Uses `copy_file_range(2)` (reflinks or in-kernel copies, no user-space buffer); falls back to a
  /// bounded `pread`/`pwrite` loop when the kernel or file system refuses (`EXDEV`, `ENOSYS`,
  /// `EOPNOTSUPP`, `EINVAL`).
  public static func copy(
    from source: FileDescriptor, offset sourceOffset: Int, to destination: FileDescriptor,
    offset destinationOffset: Int, byteCount: Int
  ) throws(SystemError) {
    var done = 0
    var useKernel = true
    while done < byteCount, useKernel, let copyFileRange = kernelCopy {
      var inOffset = Int64(sourceOffset + done)
      var outOffset = Int64(destinationOffset + done)
      let n = SystemCall.retrying { copyFileRange(source.rawValue, &inOffset, destination.rawValue, &outOffset, byteCount - done, 0) }
      if n > 0 {
        done += n
      } else if n == 0 {
        throw SystemError("read", path: source.path, code: EIO, detail: "file ends at byte \(sourceOffset + done) during a copy")
      } else {
        switch errno {
        case EXDEV, ENOSYS, EOPNOTSUPP, EINVAL: useKernel = false
        default:
          throw SystemError("copy", path: source.path, detail: "to '\(destination.path)' at byte offset \(destinationOffset + done)")
        }
      }
    }
    guard done < byteCount else { return }
    let chunk = 8 << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: min(chunk, byteCount - done), alignment: 64)
    defer { buffer.deallocate() }
    while done < byteCount {
      let n = min(buffer.count, byteCount - done)
      let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
      try source.read(into: slice, at: sourceOffset + done)
      try destination.write(UnsafeRawBufferPointer(slice), at: destinationOffset + done)
      done += n
    }
  }
}
