#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// The resource limits a run depends on (`ulimit -n`, `ulimit -v`), checked up front so that a starved
/// process fails with a message instead of crashing where the runtime cannot recover: libdispatch traps when
/// it cannot create a descriptor, and the Swift runtime aborts when a small allocation fails.
///
/// The rule for address space: every large reservation Smelt makes is a mapping (`MappedFile`), and a
/// mapping is refused (a clean error) when it would leave less than `addressSpaceReserve` under the
/// `RLIMIT_AS` limit, so the runtime, thread stacks, malloc arenas and scratch buffers always have that
/// much. `startupProblem()` refuses to start with less.
public enum ProcessLimits {
  /// Descriptors a run needs besides its input files: the standard streams, libdispatch's epoll, eventfd
  /// and one signalfd per handled signal, output, lock and digest files, with room to spare.
  public static let minimumFreeDescriptors = 32

  /// Address space kept free of mappings for everything else: 256 MiB plus 32 MiB per processor (a thread
  /// stack, a malloc arena share and a worker's scratch buffers each).
  public static var addressSpaceReserve: Int {
    (256 << 20) + (32 << 20) * max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
  }

  /// Raises the soft open-file limit to the hard one (at most 65536), as Go's runtime does: a checkpoint
  /// of hundreds of shards is opened at once. Returns the soft limit in force afterwards.
  @discardableResult
  public static func raiseOpenFileLimit() -> Int {
    var limit = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &limit) == 0 else { return Int.max }
    let target = min(limit.rlim_max, 65536)
    if limit.rlim_cur < target {
      var raised = limit
      raised.rlim_cur = target
      if setrlimit(resource, &raised) == 0 { return Int(target) }
    }
    return limit.rlim_cur == rlim_t.max ? Int.max : Int(limit.rlim_cur)
  }

  /// How many more descriptors this process can open, counted up to `limit` (by duplicating standard
  /// input and closing the duplicates again).
  public static func freeDescriptorCount(upTo limit: Int) -> Int {
    var probes: [Int32] = []
    defer { for fd in probes { _ = close(fd) } }
    while probes.count < limit {
      let fd = fcntl(0, F_DUPFD_CLOEXEC, 0)
      if fd < 0 {
        // Standard input may be closed: open /dev/null instead.
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard null >= 0 else { break }
        probes.append(null)
        continue
      }
      probes.append(fd)
    }
    return probes.count
  }

  /// The soft address-space limit (`ulimit -v`) in bytes, or `nil` when unlimited.
  public static var addressSpaceLimit: Int? {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
    return limit.rlim_cur > rlim_t(Int.max) ? nil : Int(limit.rlim_cur)
  }

  /// The process's current virtual size in bytes (`/proc/self/statm`), or `nil` when unreadable.
  public static var virtualByteCount: Int? {
    guard let bytes = try? FileSystem.readProcFile("/proc/self/statm", limit: 4096), !bytes.isEmpty else { return nil }
    let pages = bytes.prefix { $0 >= 0x30 && $0 <= 0x39 }.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// Address space left under `ulimit -v` (`nil` when unlimited or unknown).
  public static var freeAddressSpace: Int? {
    guard let limit = addressSpaceLimit, let used = virtualByteCount else { return nil }
    return limit - used
  }

  /// Why this process should not start (too few free descriptors, too little address space), or `nil`.
  /// Call first thing in `main`, after `raiseOpenFileLimit()`, before starting any thread.
  public static func startupProblem() -> String? {
    let free = freeDescriptorCount(upTo: minimumFreeDescriptors)
    if free < minimumFreeDescriptors {
      return "only \(free) more file descriptor(s) can be opened (ulimit -n); smelt needs at least \(minimumFreeDescriptors) besides its input files: raise the limit (e.g. ulimit -n 1024) or close inherited descriptors"
    }
    if let available = freeAddressSpace, available < addressSpaceReserve {
      return "the address-space limit (ulimit -v \(ProcessLimits.addressSpaceLimit.map { $0 >> 10 } ?? 0)) leaves \(ByteText.mebibytes(max(0, available))) free; smelt needs at least \(ByteText.mebibytes(addressSpaceReserve)) plus the size of the files it maps: raise it (ulimit -v unlimited)"
    }
    return nil
  }

  /// Why mapping `byteCount` more bytes would starve the process under `ulimit -v`, or `nil`.
  static func mappingProblem(byteCount: Int) -> String? {
    guard let available = freeAddressSpace, available - byteCount < addressSpaceReserve else { return nil }
    return "mapping \(byteCount) bytes would leave less than \(ByteText.mebibytes(addressSpaceReserve)) of the address-space limit (ulimit -v \(ProcessLimits.addressSpaceLimit.map { $0 >> 10 } ?? 0)) free; smelt maps its inputs whole: raise the limit (ulimit -v unlimited)"
  }
}

/// Byte counts in messages of this module.
enum ByteText {
  static func mebibytes(_ byteCount: Int) -> String { "\(byteCount >> 20) MiB" }
}
