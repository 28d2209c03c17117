import Checkpoint
import Quantization
import ReferenceModel
import Testing
import TensorCore
import WeightFormats
import WeightSources
@testable import Validation

/// The provider reads every 4-bit layout Smelt's quantizers write and returns what the producer's own
/// dequantizer returns, with the logical `[out, in]` shape.
@Suite("4-bit weights through the provider")
struct PackedFormatTests {
  enum Format: String, CaseIterable, Sendable {
    case int4, int4Asymmetric, gptq, mlx, mxfp4, mxfp4GptOss, nvfp4ModelOpt, nvfp4CompressedTensors
  }

  static let rows = 8, columns = 64

  /// A deterministic [8, 64] BF16-exact weight.
  static let weight: [Float] = (0..<(rows * columns)).map { i in
    let x = Float((i * 37) % 101 - 50) / 400
    return BFloat16.float(fromBits: BFloat16.bits(from: x))
  }

  static func tensors(_ format: Format) throws -> (WeightStorage, [PackedTensor], [Float]) {
    try weight.withUnsafeBufferPointer { values in
      let matrix = try WeightMatrix(values: values, rowCount: rows, columnCount: columns, dtype: .bfloat16)
      switch format {
      case .int4, .int4Asymmetric:
        let result = try Int4GroupQuantizer.quantize(
          matrix, groupSize: 32, symmetry: format == .int4 ? .symmetric : .asymmetric)
        let tensors = Int4PackQuantized.tensors(result)
        return (.int4PackQuantized, tensors, try Int4PackQuantized.dequantize(tensors, groupSize: 32).values)
      case .gptq:
        let tensors = GPTQv1.tensors(try GPTQv1.quantize(matrix, groupSize: 32, symmetry: .symmetric))
        return (.gptq, tensors, try GPTQv1.dequantize(tensors, groupSize: 32).values)
      case .mlx:
        let tensors = MLXAffine.tensors(try MLXAffine.quantize(matrix, groupSize: 32, bits: 4))
        return (.mlxAffine, tensors, try MLXAffine.dequantize(tensors, groupSize: 32, bits: 4).values)
      case .mxfp4:
        let tensors = MXFP4.compressedTensorsTensors(try MXFP4.quantize(matrix, rule: .compressedTensors))
        return (.mxfp4CompressedTensors, tensors, try MXFP4.dequantizeCompressedTensors(tensors).values)
      case .mxfp4GptOss:
        let tensors = MXFP4.gptOssTensors(try MXFP4.quantize(matrix, rule: .gptOss))
        return (.mxfp4GptOss, tensors, try MXFP4.dequantizeGptOss(tensors).values)
      case .nvfp4ModelOpt:
        let tensors = NVFP4.tensors(try NVFP4.quantize(matrix, producer: .modelOpt))
        // ModelOpt dequantizes to the original weight dtype (config.json torch_dtype; BF16 without a config),
        // as convert does: validate and convert share one decoder.
        return (.nvfp4ModelOpt, tensors, try NVFP4.dequantize(tensors, producer: .modelOpt, outputDType: .bfloat16).values)
      case .nvfp4CompressedTensors:
        let tensors = NVFP4.tensors(try NVFP4.quantize(matrix, producer: .compressedTensors))
        return (.nvfp4CompressedTensors, tensors, try NVFP4.dequantize(tensors, producer: .compressedTensors).values)
      }
    }
  }

  @Test("dequantized weight, shape and row slices equal the producer's dequantizer", arguments: Format.allCases)
  func matchesProducer(_ format: Format) throws {
    let (storage, tensors, expected) = try Self.tensors(format)
    let module = "model.layers.0.mlp.experts.0.up_proj"
    // gpt-oss names its tensors `<stem>_blocks` / `<stem>_scales`.
    let name: (PackedTensor) -> String = { t in
      format == .mxfp4GptOss ? "\(module)_\(t.nameSuffix)" : "\(module).\(t.nameSuffix)"
    }
    let directory = try Fixtures.writeCheckpoint(tensors.map { (name($0), $0.dtype, $0.shape, $0.bytes) })
    let weights = try CheckpointWeightProvider(path: directory)
    let logical = format == .mxfp4GptOss ? module : module + ".weight"
    #expect(weights.storage(of: logical) == storage)
    #expect(try weights.shape(of: logical) == [Self.rows, Self.columns])
    let whole = try weights.weight(logical)
    #expect(whole.values == expected)
    #expect(try weights.weightRows(logical, rows: 2..<5).values == Array(expected[(2 * 64)..<(5 * 64)]))
    // Against the BF16 original: 4-bit SNR above the 10 dB default floor.
    let snr = ComparisonMetrics(reference: Self.weight, candidate: whole.values).snrDecibels ?? 0
    #expect(snr > 12, "\(format): \(snr) dB")
  }
}
