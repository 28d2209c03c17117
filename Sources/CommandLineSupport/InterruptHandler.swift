#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import Dispatch
import Synchronization

/// SIGINT/SIGTERM handling: run registered cleanups (e.g. remove partial output), print `Interrupted.` to
/// stderr and exit 130.
///
/// Design choice: a Dispatch signal source rather than a C signal handler. The signals are ignored at the
/// process level (`SIG_IGN`) and delivered to a handler that runs on a Dispatch queue, as ordinary Swift
/// code, so cleanups may be any closures (allocate, take locks, call `unlink`) with no async-signal-safety
/// constraints. The cost: the handler needs a free Dispatch worker thread, which Smelt always has because
/// its compute runs on `concurrentPerform` threads or the main thread. A second signal during cleanup is
/// ignored. Exit uses `_exit` so no atexit handler races with threads still running.
public enum InterruptHandler {
  /// An id for removing a cleanup that is no longer needed (its output was renamed into place).
  public struct CleanupToken: Sendable, Hashable {
    let id: Int
  }

  private struct Registry {
    var nextID = 0
    var cleanups: [(id: Int, run: @Sendable () -> Void)] = []
    var sources: [any DispatchSourceSignal] = []
  }

  private static let registry = Mutex(Registry())

  /// Installs the SIGINT and SIGTERM handlers (idempotent). Call once from `main`, before work starts;
  /// tests never call it.
  public static func install() {
    registry.withLock { registry in
      guard registry.sources.isEmpty else { return }
      for signalNumber in [SIGINT, SIGTERM] {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler { interrupted() }
        source.resume()
        registry.sources.append(source)
      }
    }
  }

  /// Registers `cleanup` to run (most recent first) if the process is interrupted.
  @discardableResult
  public static func register(_ cleanup: @escaping @Sendable () -> Void) -> CleanupToken {
    registry.withLock { registry in
      registry.nextID += 1
      registry.cleanups.append((registry.nextID, cleanup))
      return CleanupToken(id: registry.nextID)
    }
  }

  /// Registers removal of the file at `path` (a temporary output) on interrupt.
  @discardableResult
  public static func removeOnInterrupt(path: String) -> CleanupToken {
    register { _ = unlink(path) }
  }

  /// Forgets a cleanup, e.g. after its temporary file was renamed into place.
  public static func unregister(_ token: CleanupToken) {
    registry.withLock { registry in registry.cleanups.removeAll { $0.id == token.id } }
  }

  /// Runs every registered cleanup, most recent first, and forgets them. `interrupted()` calls this; it is
  /// public for tests and for commands that abort on their own.
  public static func runCleanups() {
    let cleanups = registry.withLock { registry in
      defer { registry.cleanups.removeAll() }
      return registry.cleanups
    }
    for cleanup in cleanups.reversed() { cleanup.run() }
  }

  private static func interrupted() -> Never {
    runCleanups()
    TextOutput.standardError.write("\nInterrupted.\n")
    _exit(ExitCode.interrupted.rawValue)
  }
}
