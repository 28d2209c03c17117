#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
import Dispatch
import Synchronization

/// Handling of the signals that would end the process: run registered cleanups (e.g. remove partial
/// output), print `Interrupted.` to stderr and exit 130.
///
/// The signals (`handledSignals`) are every one whose default action terminates the process and that a user
/// or the system sends to stop a job: SIGINT (Ctrl-C), SIGTERM (kill, schedulers), SIGHUP (the terminal or
/// ssh session went away), SIGPIPE (sent with kill; a write to a closed pipe only fails with EPIPE, since
/// the signal is blocked), SIGUSR1/SIGUSR2, SIGALRM and SIGXCPU (ulimit -t). Each leaves no temporary file
/// behind. (SIGXFSZ is ignored instead, `CurrentProcess.reportFileSizeLimitAsError`: a file-size limit is a
/// write error.)
///
/// Design choice: a Dispatch signal source rather than a C signal handler. The signals are ignored at the
/// process level (`SIG_IGN`) and delivered to a handler that runs on a Dispatch queue, as ordinary Swift
/// code, so cleanups may be any closures (allocate, take locks, call `unlink`) with no async-signal-safety
/// constraints. The cost: the handler needs a free Dispatch worker thread, which Smelt always has because
/// its compute runs on `concurrentPerform` threads or the main thread. Exit uses `_exit` so no atexit handler
/// races with threads still running.
///
/// Linux details: libdispatch reads signals from a `signalfd` and installs its own `sigaction` trampoline
/// that blocks the signal in whichever thread caught it and re-sends it to its manager thread. Registration
/// is asynchronous; `install()` waits for it (up to 2 s). A signal that was ignored when the process started
/// (`SIG_IGN`, as shells do for background jobs, or `nohup`) stays ignored: no handler is installed for it.
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

  /// The status an interrupted run exits with: 130, the shell's 128 + SIGINT (`ExitCode.interrupted`).
  public static let exitStatus: Int32 = 130

  /// The signals `install()` handles.
  public static let handledSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU]

  /// Installs the handlers of `handledSignals` (idempotent). Call once from `main`, before work starts;
  /// tests never call it.
  public static func install() {
    registry.withLock { registry in
      guard registry.sources.isEmpty else { return }
      // Block the signals first (threads started later inherit the mask): libdispatch on Linux reads them
      // through a signalfd that it registers asynchronously, and a signal arriving before that would
      // otherwise take its default action and kill the process with temporary files still on disk.
      // Blocked signals stay pending until the signalfd consumes them.
      var blocked = sigset_t()
      sigemptyset(&blocked)
      for signalNumber in handledSignals where !isIgnored(signalNumber) { sigaddset(&blocked, signalNumber) }
      pthread_sigmask(SIG_BLOCK, &blocked, nil)
      // Wait (briefly) until every source is registered, so that a signal sent once `install()` has
      // returned is always handled; one sent while registering could otherwise be dropped.
      let registered = DispatchGroup()
      for signalNumber in handledSignals where !isIgnored(signalNumber) {
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler { interrupted() }
        registered.enter()
        source.setRegistrationHandler { registered.leave() }
        source.resume()
        registry.sources.append(source)
      }
      _ = registered.wait(timeout: .now() + .seconds(2))
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

  /// Whether `signalNumber`'s disposition is `SIG_IGN` (queried without changing it).
  static func isIgnored(_ signalNumber: Int32) -> Bool {
    var current = sigaction()
    guard sigaction(signalNumber, nil, &current) == 0 else { return false }
    return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self)
      == unsafeBitCast(SIG_IGN, to: Int.self)
  }

  private static func interrupted() -> Never {
    runCleanups()
    Array("\nInterrupted.\n".utf8).withUnsafeBytes { _ = StandardStream.error.writeAll($0) }
    _exit(exitStatus)
  }
}
