#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#endif

/// `SHA256_Init` / `SHA256_Update` / `SHA256_Final` from the system's libcrypto (OpenSSL 1.1 or 3), if any.
public enum SystemSHA256 {
  /// `sizeof(SHA256_CTX)` is 112 bytes in OpenSSL 1.1 and 3; allocated generously.
  public static let contextByteCount = 256

  public struct Functions: Sendable {
    // C function addresses as integers: plain values, trivially Sendable.
    let initAddress: UInt
    let updateAddress: UInt
    let finalAddress: UInt

    typealias InitFunction = @convention(c) (UnsafeMutableRawPointer) -> Int32
    typealias UpdateFunction = @convention(c) (UnsafeMutableRawPointer, UnsafeRawPointer, Int) -> Int32
    typealias FinalFunction = @convention(c) (UnsafeMutablePointer<UInt8>, UnsafeMutableRawPointer) -> Int32

    public func initialize(_ context: UnsafeMutableRawPointer) -> Int32 {
      unsafeBitCast(UnsafeRawPointer(bitPattern: initAddress), to: InitFunction.self)(context)
    }
    public func update(_ context: UnsafeMutableRawPointer, _ bytes: UnsafeRawPointer, _ count: Int) -> Int32 {
      unsafeBitCast(UnsafeRawPointer(bitPattern: updateAddress), to: UpdateFunction.self)(context, bytes, count)
    }
    public func finalize(_ digest: UnsafeMutablePointer<UInt8>, _ context: UnsafeMutableRawPointer) -> Int32 {
      unsafeBitCast(UnsafeRawPointer(bitPattern: finalAddress), to: FinalFunction.self)(digest, context)
    }
  }

  /// Loaded once; `nil` when no libcrypto with these symbols can be opened.
  public static let functions: Functions? = {
    for name in ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"] {
      guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
      // The handle stays open for the life of the process (the functions are used until exit).
      guard let i = dlsym(handle, "SHA256_Init"), let u = dlsym(handle, "SHA256_Update"),
        let f = dlsym(handle, "SHA256_Final")
      else { continue }
      return Functions(
        initAddress: UInt(bitPattern: i), updateAddress: UInt(bitPattern: u), finalAddress: UInt(bitPattern: f))
    }
    return nil
  }()
}
