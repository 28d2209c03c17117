import TensorCore

/// Loads quantizer input elements as `Float` from raw (possibly unaligned) bytes; one conformer per
/// source dtype so the kernels specialize.
protocol BlockFP8Source: LaneLoader, SendableMetatype {
  static var byteWidth: Int { get }
}

enum BlockFP8SourceF32: BlockFP8Source {
  static var byteWidth: Int { 4 }
  @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
  }
  @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
  }
}

enum BlockFP8SourceBF16: BlockFP8Source {
  static var byteWidth: Int { 2 }
  @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    BFloat16.float(fromBits: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self))
  }
  @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    BFloat16.floats(fromBits: base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self))
  }
}

enum BlockFP8SourceF16: BlockFP8Source {
  static var byteWidth: Int { 2 }
  @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
    Float16Conversion.float(fromBits: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self))
  }
  @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
    Float16Conversion.floats(fromBits: base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self))
  }
}
