import TensorCore
import Testing

@testable import GGML

/// Every type against the bytes ggml's C code wrote for the same input (Golden/README.md).
@Suite("ggml golden blocks")
struct GGMLGoldenTests {
  static let quantizedTypes = GGMLKernels.supportedTypes.filter { $0 != .f32 }
  static let importanceTypes = quantizedTypes.filter { GGMLKernels.forType($0)!.usesImportance }

  @Test("the scalar reference writes ggml's quantize_row_<type>_ref bytes", arguments: quantizedTypes)
  func referenceMatchesGgml(type: GGMLType) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    let expected = try GGMLGolden.bytes("\(GGMLGolden.stem(type)).bin")
    let actual = try kernels.quantized(GGMLGolden.input, rowLength: GGMLGolden.rowLength, .reference)
    let problem = GGMLGolden.firstDifference(actual, expected, type: type)
    #expect(problem == nil, "\(type): \(problem ?? "")")
  }

  @Test("with an importance matrix the reference writes llama-quantize's --imatrix bytes", arguments: importanceTypes)
  func importanceReferenceMatchesGgml(type: GGMLType) throws {
    let kernels = try #require(GGMLKernels.forType(type))
    let expected = try GGMLGolden.bytes("\(GGMLGolden.stem(type))-imatrix.bin")
    let actual = try kernels.quantized(
      GGMLGolden.input, rowLength: GGMLGolden.rowLength, importance: GGMLGolden.importance, .reference)
    let problem = GGMLGolden.firstDifference(actual, expected, type: type)
    #expect(problem == nil, "\(type): \(problem ?? "")")
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
          NonLinearQuantsReference.quantizeIQ4_NLDeterministic(
            x.baseAddress! + r * GGMLGolden.rowLength, count: GGMLGolden.rowLength, into: y.baseAddress! + r * 288)
        }
      }
    }
    let problem = GGMLGolden.firstDifference(actual, expected, type: .iq4_nl)
    #expect(problem == nil, "\(problem ?? "")")
  }
}
