// Test helpers shared by every test target.
import SystemIO

#if canImport(Glibc)
  import Glibc
#endif

/// File locations for tests, independent of the working directory the test runner uses.
public enum TestPaths {
  /// The repository root, found from this file's location.
  public static let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    while let last = parts.popLast(), last != "Tests" {}
    return parts.joined(separator: "/")
  }()

  /// `samples/<name>` in the repository.
  public static func sample(_ name: String) -> String { repositoryRoot + "/samples/" + name }

  /// A fresh, empty directory under /tmp unique to this process and `name` (removed first if present).
  public static func scratchDirectory(_ name: String) throws -> String {
    let path = "/tmp/smelt-tests-\(getpid())/\(name)"
    try FileSystem.removeTree(path)
    try FileSystem.createDirectory(path)
    return path
  }

  /// A path under this process's scratch area that does not exist yet (for outputs a command creates).
  public static func scratchPath(_ name: String) throws -> String {
    let path = "/tmp/smelt-tests-\(getpid())/\(name)"
    try FileSystem.removeTree(path)
    return path
  }
}
