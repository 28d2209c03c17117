#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The process environment, read through one function so that code which depends on it (a scheduler's
/// variables, thread counts) can be given another environment in tests.
public enum ProcessEnvironment {
  /// A lookup of environment variables by name.
  public typealias Lookup = @Sendable (String) -> String?

  /// The real environment of this process.
  public static let current: Lookup = { name in getenv(name).map { String(cString: $0) } }

  /// Processors online. (`sched_getaffinity` is not exported by Glibc's Swift module; `--threads` or
  /// `SMELT_THREADS` override this where a container's quota is smaller.)
  public static var activeProcessorCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

  /// A fixed environment (tests, or a job description replayed elsewhere).
  public static func fixed(_ values: [String: String]) -> Lookup { { values[$0] } }
}
