#if canImport(Glibc)
  @preconcurrency import Glibc
#elseif canImport(Musl)
  @preconcurrency import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The C math library's elementary functions, for the pure modules (TensorCore, GGML, Quantization, the
/// reference model, validation's statistics). Besides SystemIO (system calls) this is the only code that
/// imports the C library: the standard library has no `exp` or `log`, and the references Smelt matches
/// call libm itself (ggml's MXFP4 scale is `floorf(log2f(amax))`, so a different `log2` would change bytes).
///
/// Each function is `@inlinable` and forwards to the libm symbol of the same name and precision, so a hot loop
/// (softmax, SiLU, RoPE tables) compiles to the call it would make with `import Glibc`.
public enum CMath {
  @inlinable public static func exp(_ x: Float) -> Float { expf(x) }
  @inlinable public static func exp(_ x: Double) -> Double { cExp(x) }
  @inlinable public static func log(_ x: Double) -> Double { cLog(x) }
  @inlinable public static func log2(_ x: Float) -> Float { log2f(x) }
  @inlinable public static func log10(_ x: Double) -> Double { cLog10(x) }
  @inlinable public static func pow(_ x: Float, _ y: Float) -> Float { powf(x, y) }
  @inlinable public static func pow(_ x: Double, _ y: Double) -> Double { cPow(x, y) }
  @inlinable public static func sin(_ x: Float) -> Float { sinf(x) }
  @inlinable public static func cos(_ x: Float) -> Float { cosf(x) }
  @inlinable public static func cos(_ x: Double) -> Double { cCos(x) }
}

// The Double functions share their names with `CMath`'s own: these reach the C ones.
@usableFromInline func cExp(_ x: Double) -> Double { exp(x) }
@usableFromInline func cLog(_ x: Double) -> Double { log(x) }
@usableFromInline func cLog10(_ x: Double) -> Double { log10(x) }
@usableFromInline func cPow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
@usableFromInline func cCos(_ x: Double) -> Double { cos(x) }
