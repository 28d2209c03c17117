#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// Path and directory operations over plain strings (no Foundation): the small set Smelt needs.
public enum FileSystem {
  /// Splits `path` into its directory (`"."` when there is none) and last component.
  public static func split(_ path: String) -> (directory: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let directory = String(path[..<slash])
    return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
  }

  /// Joins path components with `/`.
  public static func join(_ parts: String...) -> String { join(parts) }

  /// Joins path components with `/`.
  public static func join(_ parts: [String]) -> String {
    var result = ""
    for part in parts where !part.isEmpty {
      if result.isEmpty || result.hasSuffix("/") { result += part } else { result += "/" + part }
    }
    return result
  }

  /// The kind of thing at a path.
  public enum Kind: Sendable { case file, directory, other }

  /// What `path` is, or `nil` if nothing is there (follows symlinks).
  public static func kind(of path: String) -> Kind? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    switch info.st_mode & S_IFMT {
    case S_IFREG: return .file
    case S_IFDIR: return .directory
    default: return .other
    }
  }

  /// `stat` (or, not following a final symbolic link, `lstat`) of `path`; `nil` if nothing is there.
  public static func status(of path: String, followingLinks: Bool = true) -> FileStatus? {
    var info = stat()
    let result = followingLinks ? stat(path, &info) : lstat(path, &info)
    return result == 0 ? FileStatus(info) : nil
  }

  /// True if something exists at `path`.
  public static func exists(_ path: String) -> Bool { kind(of: path) != nil }
  /// True if `path` is a directory.
  public static func isDirectory(_ path: String) -> Bool { kind(of: path) == .directory }

  /// The size of the file at `path`.
  public static func byteCount(of path: String) throws(SystemError) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { throw SystemError("stat", path: path) }
    return Int(info.st_size)
  }

  /// The bytes an unprivileged writer may still use on the file system holding `path` (`statvfs`'s
  /// `f_bavail × f_frsize`).
  public static func availableByteCount(at path: String) throws(SystemError) -> Int {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { throw SystemError("statvfs", path: path) }
    let (bytes, overflow) = Int(clamping: info.f_bavail).multipliedReportingOverflow(by: Int(clamping: info.f_frsize))
    return overflow ? Int.max : bytes
  }

  /// Allocated bytes on disk (differs from the size for sparse files).
  public static func allocatedByteCount(of path: String) throws(SystemError) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { throw SystemError("stat", path: path) }
    return Int(info.st_blocks) * 512
  }

  /// The names in `directory` (no `.`/`..`), sorted.
  public static func contents(of directory: String) throws(SystemError) -> [String] {
    guard let dir = opendir(directory) else { throw SystemError("list directory", path: directory) }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
        pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
          String(cString: $0)
        }
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  /// Creates `path` and any missing parents (mode 0755). Succeeds if it already is a directory.
  public static func createDirectory(_ path: String) throws(SystemError) {
    if isDirectory(path) { return }
    let parent = split(path).directory
    if parent != path && parent != "." && parent != "/" && !exists(parent) { try createDirectory(parent) }
    if mkdir(path, 0o755) != 0 && !(errno == EEXIST && isDirectory(path)) {
      throw SystemError("create directory", path: path)
    }
  }

  /// Removes a file or an empty directory; nothing there is not an error.
  public static func remove(_ path: String) throws(SystemError) {
    if unlink(path) == 0 || errno == ENOENT { return }
    if errno == EISDIR || errno == EPERM, rmdir(path) == 0 { return }
    throw SystemError("remove", path: path)
  }

  /// Removes `path` and everything below it.
  public static func removeTree(_ path: String) throws(SystemError) {
    guard let kind = kind(of: path) else { return }
    if kind == .directory {
      for name in try contents(of: path) { try removeTree(join(path, name)) }
      if rmdir(path) != 0 { throw SystemError("remove directory", path: path) }
    } else {
      try remove(path)
    }
  }

  /// Renames `source` to `destination`, replacing it atomically (`rename(2)`).
  public static func rename(_ source: String, to destination: String) throws(SystemError) {
    guard Glibc.rename(source, destination) == 0 else {
      throw SystemError("rename", path: source, detail: "to '\(destination)'")
    }
  }

  /// Syncs a directory so that renames inside it are durable; errors are ignored (not all file
  /// systems support it).
  public static func syncDirectory(_ path: String) {
    let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    _ = Glibc.close(fd)
  }

  /// Reads a whole (small) file: config.json, an index. Refuses files over `limit` bytes.
  public static func readFile(_ path: String, limit: Int = 512 << 20) throws(SystemError) -> [UInt8] {
    let fd = try FileDescriptor.open(path, .readOnly)
    defer { fd.close() }
    let size = try fd.byteCount()
    guard size <= limit else { throw SystemError("read", path: path, code: EFBIG, detail: "\(size) bytes exceeds the \(limit)-byte limit for this kind of file") }
    var bytes = [UInt8](repeating: 0, count: size)
    let result: Result<Void, SystemError> = bytes.withUnsafeMutableBytes { raw in
      Result { () throws(SystemError) in try fd.read(into: raw, at: 0) }
    }
    try result.get()
    return bytes
  }

  /// Reads a kernel pseudo-file (`/proc/...`), whose size `stat` reports as 0, up to `limit` bytes.
  static func readProcFile(_ path: String, limit: Int = 16 << 20) throws(SystemError) -> [UInt8] {
    let fd = SystemCall.retrying { open(path, O_RDONLY | O_CLOEXEC) }
    guard fd >= 0 else { throw SystemError("open", path: path) }
    defer { _ = close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < limit {
      let n = chunk.withUnsafeMutableBytes { raw in SystemCall.retrying { read(fd, raw.baseAddress, raw.count) } }
      if n < 0 { throw SystemError("read", path: path) }
      if n == 0 { break }
      bytes += chunk[0..<n]
    }
    return bytes
  }

  /// Writes a whole small file atomically (temporary sibling, fsync, rename).
  public static func writeFileAtomically(_ bytes: [UInt8], to path: String) throws(SystemError) {
    let file = try AtomicOutputFile(path: path)
    try file.write(bytes, at: 0)
    try file.commit()
  }

  /// Resolves `path` to an absolute, symlink-free path (`realpath`), or `nil` if it does not exist.
  public static func canonicalPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
  }

  /// True when `path` (which must exist) is the directory `ancestor` or lies below it, comparing the
  /// device and inode of every directory on its resolved path: neither a symbolic link nor a bind mount
  /// (which gives one directory two paths) hides the relation. `false` when `path` does not exist.
  public static func isWithin(_ path: String, directory ancestor: FileIdentity) -> Bool {
    guard var current = canonicalPath(path) else { return false }
    while true {
      if status(of: current)?.identity == ancestor { return true }
      let parent = split(current).directory
      if parent == current { return false }
      current = parent
    }
  }

  /// The directory entry `path` names: its directory's identity (symbolic links and bind mounts resolved)
  /// and its last component, not following a link there. Two paths name the same entry, so that writing one
  /// (rename over it) replaces what the other shows, exactly when their entries are equal. `nil` when the
  /// directory does not exist.
  public static func entry(of path: String) -> (directory: FileIdentity, name: String)? {
    let (directory, name) = split(path)
    guard let identity = status(of: directory)?.identity else { return nil }
    return (identity, name)
  }

  /// `path` itself if it exists, else its nearest existing ancestor (`"."` for a relative path whose
  /// first component is missing).
  public static func nearestExisting(_ path: String) -> String {
    var probe = path
    while !exists(probe) {
      let parent = split(probe).directory
      if parent == probe { break }
      probe = parent
    }
    return probe
  }

  /// Copies a whole regular file atomically, preferring in-kernel copies. The copy keeps the source's
  /// permission bits, never wider than a new file's (a 0600 secret stays 0600).
  public static func copyFile(_ source: String, to destination: String) throws(SystemError) {
    let input = try FileDescriptor.open(source, .readOnly)
    defer { input.close() }
    let status = try input.status()
    let size = status.byteCount
    let output = try AtomicOutputFile(path: destination, permissions: status.permissions)
    try FileCopy.copy(from: input, offset: 0, to: output.fileDescriptor, offset: 0, byteCount: size)
    try output.commit()
  }
}
