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
  /// Set by `removeAllAndClose()`: the process is exiting, so paths registered later are removed at once.
  private let closed = Atomic<Bool>(false)

  /// Adds `path` to the files removed on interruption.
  public func register(_ path: String) {
    let removeNow = paths.withLock { paths -> Bool in
      if closed.load(ordering: .sequentiallyConsistent) { return true }
      paths.insert(path)
      return false
    }
    if removeNow { _ = unlink(path) }
  }
  /// Forgets `path` (it was renamed into place or removed).
  public func unregister(_ path: String) { paths.withLock { _ = $0.remove(path) } }

  /// `removeAll()` for an exiting process: other threads keep running until the process ends and may
  /// create another temporary file in the meantime, so every path registered from now on is removed
  /// as soon as it is registered.
  public func removeAllAndClose() {
    let all = paths.withLock { current -> Set<String> in
      closed.store(true, ordering: .sequentiallyConsistent)
      defer { current.removeAll() }
      return current
    }
    for path in all { _ = unlink(path) }
  }

  /// Unlinks every registered path. Called from a signal-handling queue, not from signal context.
  public func removeAll() {
    let all = paths.withLock { current -> Set<String> in
      defer { current.removeAll() }
      return current
    }
    for path in all { _ = unlink(path) }
  }
}
