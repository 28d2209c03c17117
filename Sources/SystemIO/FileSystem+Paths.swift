#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

extension FileSystem {
  /// The working directory of this process, or `nil` when it cannot be named (removed, too long).
  public static func currentDirectory() -> String? {
    guard let buffer = getcwd(nil, 0) else { return nil }
    defer { free(buffer) }
    return String(cString: buffer)
  }

  /// `path` made absolute against the working directory (lexically: `.` components dropped, links kept),
  /// for a command that will run from another directory or machine.
  public static func absolutePath(_ path: String) -> String {
    let joined = path.hasPrefix("/") ? path : join(currentDirectory() ?? ".", path)
    var parts: [Substring] = []
    for part in joined.split(separator: "/") where part != "." { parts.append(part) }
    return "/" + parts.joined(separator: "/")
  }
}
