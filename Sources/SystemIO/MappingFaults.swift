#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif
import Synchronization

/// Survives input files that shrink while they are mapped.
///
/// When another process truncates a file Smelt has mapped (a shard being rewritten, a network file system
/// losing a file), touching a page past the new end raises SIGBUS, which kills the process with temporary
/// files on disk and the output locked. Instead, every `MappedFile` registers its address range here, and a
/// SIGBUS handler that finds the faulting address inside a registered range maps anonymous zero pages over
/// the rest of that range (`mmap(MAP_FIXED | MAP_ANONYMOUS)`), raises the range's `faulted` flag and
/// returns: the faulting read completes (with zeros) and the program runs on. Readers call
/// `MappedFile.checkNotTruncated()` after each chunk or tensor and before committing anything derived from
/// the bytes, so zeros never reach a result: the job fails naming the file. Reads stay zero-copy.
///
/// Why this is sound: the handler runs on the faulting thread, before the faulting load completes, and sets
/// the flag (sequentially consistent) before returning; so any code that observes data from a replaced page
/// runs after the flag is set, and a check made later on that thread, or on a thread that synchronized with
/// it (the workers of a `concurrentPerform` joining), sees the flag. A fault outside every registered range
/// is not Smelt's to handle: the handler restores the previous disposition (the Swift runtime's crash
/// reporter, or the default) and returns, so the fault repeats under it; a SIGBUS sent by `kill` is
/// re-raised the same way.
///
/// The handler touches only preallocated memory (atomics in `slots`), calls only `mmap`, `sigaction` and
/// `raise`, and allocates nothing. The table has `capacity` slots; a mapping that finds none free is
/// refused (`SystemError`, `EMFILE`).
enum MappingFaults {
  /// The most mappings registered at once.
  static let capacity = 4096

  /// One registered range. `sequence` is odd while the slot is being changed (a seqlock: the handler skips
  /// a slot whose sequence is odd or changed while it read `start` and `end`).
  struct Slot: ~Copyable {
    let sequence = Atomic<UInt>(0)
    let start = Atomic<UInt>(0)
    let end = Atomic<UInt>(0)
    let faulted = Atomic<Bool>(false)
  }

  private struct Table: ~Copyable {
    let slots: UnsafeMutablePointer<Slot>
    /// One past the highest slot ever used: the handler scans `0..<highWater`.
    let highWater = Atomic<Int>(0)
  }

  // SAFETY: the slots are atomics, allocated once and never freed; the pointer itself never changes.
  nonisolated(unsafe) private static let table: Table = {
    let slots = UnsafeMutablePointer<Slot>.allocate(capacity: capacity)
    for i in 0..<capacity { (slots + i).initialize(to: Slot()) }
    return Table(slots: slots)
  }()
  private static let free = Mutex((next: 0, released: [Int]()))
  private static let pageMask: UInt = UInt(sysconf(Int32(_SC_PAGESIZE))) - 1
  nonisolated(unsafe) private static var previousAction = sigaction()

  /// Installs the SIGBUS handler once per process (first mapping).
  private static let installed: Void = {
    _ = table.highWater.load(ordering: .relaxed)  // initialize the table before the handler can run
    _ = pageMask
    var action = sigaction()
    action.__sigaction_handler.sa_sigaction = { _, info, _ in MappingFaults.handleBusError(info) }
    action.sa_flags = SA_SIGINFO | SA_ONSTACK
    sigemptyset(&action.sa_mask)
    sigaction(SIGBUS, &action, &previousAction)
  }()

  /// Registers `start..<start+byteCount` (the mapping's pages); returns its slot.
  static func register(start: UInt, byteCount: Int) throws(SystemError) -> Int {
    _ = installed
    let slot = free.withLock { state -> Int? in
      if let reused = state.released.popLast() { return reused }
      guard state.next < capacity else { return nil }
      defer { state.next += 1 }
      return state.next
    }
    guard let slot else {
      throw SystemError("map", code: EMFILE, detail: "more than \(capacity) files mapped at once")
    }
    let entry = table.slots + slot
    let end = (start + UInt(byteCount) + pageMask) & ~pageMask
    entry.pointee.sequence.add(1, ordering: .sequentiallyConsistent)
    entry.pointee.faulted.store(false, ordering: .sequentiallyConsistent)
    entry.pointee.start.store(start, ordering: .sequentiallyConsistent)
    entry.pointee.end.store(end, ordering: .sequentiallyConsistent)
    entry.pointee.sequence.add(1, ordering: .sequentiallyConsistent)
    while true {
      let high = table.highWater.load(ordering: .sequentiallyConsistent)
      if high > slot { break }
      if table.highWater.compareExchange(expected: high, desired: slot + 1, ordering: .sequentiallyConsistent).exchanged { break }
    }
    return slot
  }

  /// Forgets `slot` (before its pages are unmapped).
  static func unregister(_ slot: Int) {
    let entry = table.slots + slot
    entry.pointee.sequence.add(1, ordering: .sequentiallyConsistent)
    entry.pointee.start.store(0, ordering: .sequentiallyConsistent)
    entry.pointee.end.store(0, ordering: .sequentiallyConsistent)
    entry.pointee.sequence.add(1, ordering: .sequentiallyConsistent)
    free.withLock { $0.released.append(slot) }
  }

  /// Whether a read of `slot`'s range hit a page the file no longer has.
  static func hasFaulted(_ slot: Int) -> Bool {
    (table.slots + slot).pointee.faulted.load(ordering: .sequentiallyConsistent)
  }

  /// The signal handler's body (signal context: no allocation, no locks).
  private static func handleBusError(_ info: UnsafeMutablePointer<siginfo_t>?) {
    let savedErrno = errno
    defer { errno = savedErrno }
    if let info, info.pointee.si_code > 0 {
      let address = UInt(bitPattern: info.pointee._sifields._sigfault.si_addr)
      let high = table.highWater.load(ordering: .sequentiallyConsistent)
      for slot in 0..<high {
        let entry = table.slots + slot
        let before = entry.pointee.sequence.load(ordering: .sequentiallyConsistent)
        guard before & 1 == 0 else { continue }
        let start = entry.pointee.start.load(ordering: .sequentiallyConsistent)
        let end = entry.pointee.end.load(ordering: .sequentiallyConsistent)
        guard entry.pointee.sequence.load(ordering: .sequentiallyConsistent) == before, start != 0,
          address >= start, address < end
        else { continue }
        let page = address & ~pageMask
        let replaced = mmap(
          UnsafeMutableRawPointer(bitPattern: page), Int(end - page), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
          -1, 0)
        guard replaced != MAP_FAILED else { break }
        entry.pointee.faulted.store(true, ordering: .sequentiallyConsistent)
        return
      }
    }
    // Not a fault in a registered mapping: let the previous disposition have it.
    sigaction(SIGBUS, &previousAction, nil)
    if let info, info.pointee.si_code <= 0 { raise(SIGBUS) }
  }
}
