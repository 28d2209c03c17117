#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
import Synchronization

/// Temporary files that must not survive the process: removed by `removeAll()` when the CLI is
/// interrupted (SIGINT/SIGTERM), so Ctrl-C leaves no half-written output behind.
public final class CleanupRegistry: Sendable {
  /// The process-wide registry.
  public static let shared = CleanupRegistry()
  private let paths = Mutex(Set<String>())

  /// Adds `path` to the files removed on interruption.
  public func register(_ path: String) { paths.withLock { _ = $0.insert(path) } }
  /// Forgets `path` (it was renamed into place or removed).
  public func unregister(_ path: String) { paths.withLock { _ = $0.remove(path) } }

  /// Unlinks every registered path. Called from a signal-handling queue, not from signal context.
  public func removeAll() {
    let all = paths.withLock { current -> Set<String> in
      defer { current.removeAll() }
      return current
    }
    for path in all { _ = unlink(path) }
  }
}
