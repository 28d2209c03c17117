/// Lossless repacks into ggml blocks: other ecosystems' 4-bit codes and scales moved into a ggml block type that
/// holds the same values, with no dequantize / re-round. Pure functions over logical codes (one code per
/// element, row-major, rows a multiple of 32 long); the caller unpacks its source layout first
/// (`Int4PackQuantized.symmetricGroups`, `MXFP4.result`).
public enum GGMLRepack {
  /// Elements per block of both targets (Q4_0, MXFP4) and per scale of their sources.
  public static let blockSize = 32

  /// Repacked ggml blocks, and the blocks whose values the target could not hold exactly.
  public struct Blocks: Sendable, Equatable {
    /// `count / 32` blocks of the target type, row after row.
    public var bytes: [UInt8]
    /// Flat block indices (row-major, 32 elements each), ascending, whose scale the target cannot hold exactly.
    public var inexactBlocks: [Int]
  }

  /// Symmetric int4 groups of 32 (`x = (code − 8) · scale`, compressed-tensors `pack-quantized` with
  /// `group_size: 32`, Kimi K2-Thinking's experts) → Q4_0 (`f16 d, u8 qs[16]`; `qs[j]` low nibble element j,
  /// high nibble element j + 16; `x = (q − 8) · d`). The codes move unchanged; `d = f16(scale)`, exact when the
  /// scale is an F16 value (a BF16 scale within F16's range whose low mantissa bits F16 keeps). Other blocks are
  /// listed in `inexactBlocks`; their `d` is the scale rounded to nearest even (infinity past 65504, as
  /// `GGML_FP32_TO_FP16` does).
  ///
  /// - Parameters:
  ///   - offsetCodes: `q + 8` (0...15) per element, `[rows, columns]`.
  ///   - scales: one per 32 elements, `[rows, columns / 32]`.
  public static func q4_0(offsetCodes: [UInt8], scales: [Float], rows: Int, columns: Int) -> Blocks {
    precondition(columns % 32 == 0 && offsetCodes.count == rows * columns && scales.count == rows * columns / 32)
    let blockCount = rows * columns / 32
    var bytes = [UInt8](repeating: 0, count: blockCount * 18)
    var inexact: [Int] = []
    bytes.withUnsafeMutableBytes { out in
      for b in 0..<blockCount {
        let block = out.baseAddress! + 18 * b
        let half = GGMLScalars.halfBits(scales[b])
        if GGMLScalars.float(halfBits: half) != scales[b] { inexact.append(b) }
        block.storeHalf(half, at: 0)
        for j in 0..<16 {
          let low = offsetCodes[32 * b + j] & 0x0F, high = offsetCodes[32 * b + j + 16] & 0x0F
          block.storeBytes(of: low | high << 4, toByteOffset: 2 + j, as: UInt8.self)
        }
      }
    }
    return Blocks(bytes: bytes, inexactBlocks: inexact)
  }

  /// MXFP4 (E2M1 codes, one E8M0 byte per 32 elements: compressed-tensors, gpt-oss, DeepSeek-V4 FP4) → ggml
  /// MXFP4 (`u8 e, u8 qs[16]`; low nibble element j, high nibble element j + 16 — not the checkpoints'
  /// adjacent pairs). ggml decodes `kvalues_mxfp4[code] · 2^(e − 128)` with the E2M1 values doubled: the same
  /// value, so every block is exact except those with the NaN scale 0xFF (ggml reads it as 2^127).
  ///
  /// - Parameters:
  ///   - codes: one E2M1 code (0...15) per element, `[rows, columns]`.
  ///   - e8m0Scales: `[rows, columns / 32]`.
  public static func mxfp4(codes: [UInt8], e8m0Scales: [UInt8], rows: Int, columns: Int) -> Blocks {
    precondition(columns % 32 == 0 && codes.count == rows * columns && e8m0Scales.count == rows * columns / 32)
    let blockCount = rows * columns / 32
    var bytes = [UInt8](repeating: 0, count: blockCount * 17)
    var inexact: [Int] = []
    for b in 0..<blockCount {
      bytes[17 * b] = e8m0Scales[b]
      if e8m0Scales[b] == 0xFF { inexact.append(b) }
      for j in 0..<16 {
        bytes[17 * b + 1 + j] = codes[32 * b + j] & 0x0F | (codes[32 * b + j + 16] & 0x0F) << 4
      }
    }
    return Blocks(bytes: bytes, inexactBlocks: inexact)
  }
}
