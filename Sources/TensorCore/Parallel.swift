import Dispatch
import SystemIO

/// Data-parallel loops over index ranges, on all cores.
public enum Parallel {
  /// Worker count: `SMELT_THREADS` if set; inside a Slurm job, the CPUs it was given (`--cpus-per-task`:
  /// without a task plugin that binds, every core of the node is visible, and using them all would steal
  /// the CPUs of the node's other jobs); else the number of active processors.
  public static var defaultThreadCount: Int { threadCount(environment: ProcessEnvironment.current) }

  /// `defaultThreadCount` under `environment`.
  public static func threadCount(environment: ProcessEnvironment.Lookup) -> Int {
    if let text = environment("SMELT_THREADS"), let n = Int(text), n > 0 { return n }
    if let text = environment("SLURM_CPUS_PER_TASK"), let n = Int(text), n > 0 { return n }
    return max(1, ProcessEnvironment.activeProcessorCount)
  }

  /// Runs `body` on chunks of `0..<count`, each chunk a contiguous range, in parallel.
  ///
  /// - Parameters:
  ///   - count: the number of items.
  ///   - minimumChunk: the smallest number of items worth a task of its own.
  ///   - body: called once per chunk with a disjoint range; must only write state owned by that range.
  public static func forEachChunk(
    count: Int, minimumChunk: Int = 1, _ body: @Sendable (Range<Int>) -> Void
  ) {
    guard count > 0 else { return }
    let threads = defaultThreadCount
    // About 4 chunks per thread balances uneven work without much scheduling overhead.
    let chunkCount = max(1, min(count / max(1, minimumChunk), threads * 4))
    if chunkCount == 1 || threads == 1 {
      body(0..<count)
      return
    }
    let chunkSize = (count + chunkCount - 1) / chunkCount
    DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
      let start = chunk * chunkSize
      let end = min(count, start + chunkSize)
      if start < end { body(start..<end) }
    }
  }
}

/// A value computed on a background thread while the caller does other work: `Prefetch { try load(next) }`
/// starts at once, `value()` waits for it. What overlaps a serial load (page faults, copies) with a parallel
/// computation that would otherwise leave cores idle while the next input arrives.
///
/// `work` runs on another thread: it must not touch state the caller changes until `value()` returns (the
/// caller hands it read-only inputs, such as a weight provider it does not call meanwhile).
public final class Prefetch<Value>: @unchecked Sendable {
  // Written once by the worker before `done` is signalled, read by the caller after waiting on it.
  private var result: Result<Value, any Error>?
  private let done = DispatchSemaphore(value: 0)

  public init(_ work: @escaping () throws -> Value) {
    nonisolated(unsafe) let work = work
    DispatchQueue.global().async {
      self.result = Result { try work() }
      self.done.signal()
    }
  }

  /// The value (or the error `work` threw), once it is ready. Call it once.
  public func value() throws -> Value {
    done.wait()
    guard let result else { preconditionFailure("Prefetch.value() called twice") }
    self.result = nil
    return try result.get()
  }
}
