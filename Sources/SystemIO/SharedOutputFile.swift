/// An output file that several processes write at once, each its own byte ranges: the file of a split job
/// that more than one part writes into (one large GGUF, a small checkpoint cut into more parts than files).
///
/// It lives under a hidden temporary name (`.<name>.smelt-shared`), opened without truncating (siblings may
/// have written already) and sized to its final length; each writer syncs what it wrote. It appears under
/// its final name only when the job's last step has checked every part's ranges and renames it
/// (`publish`), so a crash at any point leaves either no file or the complete one under the real name.
public final class SharedOutputFile: Sendable {
  /// The final path.
  public let path: String
  /// Where the bytes are written until `publish`.
  public let temporaryPath: String
  private let descriptor: FileDescriptor

  /// The temporary name of `path`.
  public static func temporaryPath(for path: String) -> String {
    let (directory, name) = FileSystem.split(path)
    return FileSystem.join(directory, ".\(name).smelt-shared")
  }

  /// Opens (or creates) the temporary file of `path` and sizes it to `byteCount`, keeping what siblings wrote.
  public init(path: String, byteCount: Int) throws(SystemError) {
    self.path = path
    temporaryPath = SharedOutputFile.temporaryPath(for: path)
    descriptor = try FileDescriptor.open(temporaryPath, .readWriteCreating)
    do {
      if try descriptor.byteCount() != byteCount { try descriptor.truncate(to: byteCount) }
    } catch {
      descriptor.close()
      throw error
    }
  }

  /// Writes `bytes` at `fileOffset`.
  public func write(_ bytes: UnsafeRawBufferPointer, at fileOffset: Int) throws(SystemError) {
    try descriptor.write(bytes, at: fileOffset)
  }

  /// Writes `bytes` at `fileOffset`.
  public func write(_ bytes: [UInt8], at fileOffset: Int) throws(SystemError) {
    try descriptor.write(bytes, at: fileOffset)
  }

  /// The descriptor, for `copy_file_range` into the file.
  public var fileDescriptor: FileDescriptor { descriptor }

  /// Syncs this writer's bytes and closes the file (it stays under its temporary name).
  public func finish() throws(SystemError) {
    defer { descriptor.close() }
    try descriptor.sync()
  }

  /// Closes the file without syncing (what was written stays: a rerun of the part rewrites it).
  public func close() { descriptor.close() }

  /// Renames the complete file of `path` into place and syncs the directory (the job's last step).
  public static func publish(_ path: String) throws(SystemError) {
    try FileSystem.rename(temporaryPath(for: path), to: path)
    FileSystem.syncDirectory(FileSystem.split(path).directory)
  }
}
