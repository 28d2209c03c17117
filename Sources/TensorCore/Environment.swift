#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The value of environment variable `name`, or `nil`.
func getenvString(_ name: String) -> String? {
  guard let value = getenv(name) else { return nil }
  return String(cString: value)
}

/// Processors online. (`sched_getaffinity` is not exported by Glibc's Swift module; `--threads` or
/// `SMELT_THREADS` override this where a container's quota is smaller.)
func activeProcessorCount() -> Int {
  Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// The process environment, read through one function so that code which depends on it (a scheduler's
/// variables, thread counts) can be given another environment in tests.
public enum ProcessEnvironment {
  /// A lookup of environment variables by name.
  public typealias Lookup = @Sendable (String) -> String?

  /// The real environment of this process.
  public static let current: Lookup = { getenvString($0) }

  /// A fixed environment (tests, or a job description replayed elsewhere).
  public static func fixed(_ values: [String: String]) -> Lookup { { values[$0] } }
}
