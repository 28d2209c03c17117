import TensorCore
import Testing

@testable import GGML

/// Every type against the bytes ggml's C code wrote for the same input (Golden/README.md).
@Suite("ggml golden blocks")
struct GGMLGoldenTests {
  static let quantizedTypes = GGMLKernels.supportedTypes.filter { $0 != .f32 }
  static let importanceTypes = quantizedTypes.filter { GGMLKernels.forType($0)!.usesImportance }

  @Test(
    "both implementations write ggml's quantize_row_<type>_ref bytes", arguments: quantizedTypes,
    GGMLKernels.Implementation.allCases)
  func quantizationMatchesGgml(type: GGMLType, implementation: GGMLKernels.Implementation) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    let expected = try GGMLGolden.bytes("\(GGMLGolden.stem(type)).bin")
    let actual = try kernels.quantized(GGMLGolden.input, rowLength: GGMLGolden.rowLength, implementation)
    let problem = GGMLGolden.firstDifference(actual, expected, type: type)
    #expect(problem == nil, "\(type) \(implementation): \(problem ?? "")")
  }

  @Test(
    "with an importance matrix both implementations write llama-quantize's --imatrix bytes", arguments: importanceTypes,
    GGMLKernels.Implementation.allCases)
  func importanceQuantizationMatchesGgml(type: GGMLType, implementation: GGMLKernels.Implementation) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    let expected = try GGMLGolden.bytes("\(GGMLGolden.stem(type))-imatrix.bin")
    let actual = try kernels.quantized(
      GGMLGolden.input, rowLength: GGMLGolden.rowLength, importance: GGMLGolden.importance, implementation)
    let problem = GGMLGolden.firstDifference(actual, expected, type: type)
    #expect(problem == nil, "\(type) \(implementation): \(problem ?? "")")
  }

  @Test("types that ignore the importance matrix write the same bytes with one", arguments: quantizedTypes.filter { !importanceTypes.contains($0) })
  func importanceIgnored(type: GGMLType) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    let expected = try GGMLGolden.bytes("\(GGMLGolden.stem(type)).bin")
    let actual = try kernels.quantized(
      GGMLGolden.input, rowLength: GGMLGolden.rowLength, importance: GGMLGolden.importance, .fast)
    #expect(actual == expected)
  }

  @Test("dequantizing ggml's blocks gives ggml's floats", arguments: quantizedTypes)
  func dequantizationMatchesGgml(type: GGMLType) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    let blocks = try GGMLGolden.bytes("\(GGMLGolden.stem(type)).bin")
    for implementation in GGMLKernels.Implementation.allCases {
      let floats = try kernels.dequantized(blocks, rowLength: GGMLGolden.rowLength, implementation)
      let digest = floats.withUnsafeBytes { bytes in
        var hasher = SHA256()
        hasher.update(bytes)
        return SHA256.hexString(hasher.finalize())
      }
      #expect(digest == GGMLGolden.dequantDigests[GGMLGolden.stem(type)], "\(type) \(implementation)")
    }
  }

  @Test("IQ4_NL's quantize_row_iq4_nl_ref (no scale search) matches ggml")
  func iq4nlDeterministicReference() throws {
    let expected = try GGMLGolden.bytes("IQ4_NL-ref.bin")
    let rows = Array(GGMLGolden.input[(GGMLGolden.edgeRowCount * GGMLGolden.rowLength)...])
    var actual = [UInt8](repeating: 0, count: expected.count)
    rows.withUnsafeBufferPointer { x in
      actual.withUnsafeMutableBytes { y in
        for r in 0..<rows.count / GGMLGolden.rowLength {
          NonLinearQuants.quantizeIQ4_NLDeterministic(
            x.baseAddress! + r * GGMLGolden.rowLength, count: GGMLGolden.rowLength, into: y.baseAddress! + r * 288)
        }
      }
    }
    let problem = GGMLGolden.firstDifference(actual, expected, type: .iq4_nl)
    #expect(problem == nil, "\(problem ?? "")")
  }
}
