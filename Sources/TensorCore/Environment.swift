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
