import Checkpoint
import JSON
import Quantization
import TensorCore
import WeightFormats

/// The 4-bit (and MLX 8-bit) storages: every companion tensor is read whole and handed to the producer's
/// own dequantizer from `Quantization` (int4 pack-quantized, GPTQ v1, MLX affine, MXFP4, NVFP4), which returns
/// what that consumer computes. Group sizes come from the tensor shapes (and MLX's bit width from the config).
enum PackedWeightDequantization {
  /// The storages handled here.
  static let storages: Set<WeightStorage> = [
    .int4PackQuantized, .gptq, .mlxAffine, .mxfp4CompressedTensors, .mxfp4GptOss, .nvfp4ModelOpt,
    .nvfp4CompressedTensors,
  ]

  /// MLX's bit width: `quantization.bits` (mlx-lm) or `quantization_config.bits`, else 4.
  static func mlxBits(_ config: ModelConfig?) -> Int {
    config?.raw["quantization"]?["bits"]?.intValue ?? config?.quantizationConfig?.bits ?? 4
  }

  /// The main tensor's role for each storage.
  static func mainRole(_ storage: WeightStorage) -> String {
    switch storage {
    case .int4PackQuantized, .mxfp4CompressedTensors, .nvfp4CompressedTensors: "weight_packed"
    case .gptq: "qweight"
    case .mxfp4GptOss: "blocks"
    default: "weight"
    }
  }

  /// The dequantized `[rows, columns]` of a weight whose main tensor has `shape`.
  static func logicalShape(_ storage: WeightStorage, mainShape shape: [Int], mlxBits: Int, name: String)
    throws(ValidationError) -> [Int]
  {
    func bad(_ expected: String) -> ValidationError { .badShape(tensor: name, shape: shape, expected: expected) }
    switch storage {
    case .int4PackQuantized:
      guard shape.count == 2 else { throw bad("[out, in/8] I32 words") }
      return [shape[0], shape[1] * 8]
    case .gptq:
      guard shape.count == 2 else { throw bad("[in/8, out] I32 words") }
      return [shape[1], shape[0] * 8]
    case .mlxAffine:
      guard shape.count == 2, [2, 3, 4, 6, 8].contains(mlxBits), (shape[1] * 32) % mlxBits == 0 else {
        throw bad("[out, in·bits/32] U32 words")
      }
      return [shape[0], shape[1] * 32 / mlxBits]
    case .mxfp4CompressedTensors, .nvfp4ModelOpt, .nvfp4CompressedTensors:
      guard shape.count == 2 else { throw bad("[out, in/2] nibble pairs") }
      return [shape[0], shape[1] * 2]
    case .mxfp4GptOss:
      guard shape.count == 3 else { throw bad("[out, in/32, 16] blocks") }
      return [shape[0], shape[1] * 32]
    default:
      throw .unsupportedStorage(weight: name, storage: storage.rawValue)
    }
  }

  /// Dequantizes the whole weight from its companion tensors (role → tensor).
  static func dequantize(
    storage: WeightStorage, tensors: [PackedTensor], logicalShape: [Int], mlxBits: Int, name: String
  ) throws -> [Float] {
    func shape(_ role: String) -> [Int]? { tensors.first { $0.nameSuffix == role }?.shape }
    let columns = logicalShape.count == 2 ? logicalShape[1] : 0
    func groupSize(groups: Int?) throws -> Int {
      guard let groups, groups > 0, columns % groups == 0 else {
        throw ValidationError.badShape(tensor: name, shape: logicalShape, expected: "columns divisible by the scale groups")
      }
      return columns / groups
    }
    let result: DequantizedMatrix
    switch storage {
    case .int4PackQuantized:
      result = try Int4PackQuantized.dequantize(tensors, groupSize: try groupSize(groups: shape("weight_scale")?.last))
    case .gptq:
      result = try GPTQv1.dequantize(tensors, groupSize: try groupSize(groups: shape("scales")?.first))
    case .mlxAffine:
      result = try MLXAffine.dequantize(
        tensors, groupSize: try groupSize(groups: shape("scales")?.last), bits: mlxBits)
    case .mxfp4CompressedTensors:
      result = try MXFP4.dequantizeCompressedTensors(tensors)
    case .mxfp4GptOss:
      result = try MXFP4.dequantizeGptOss(tensors)
    case .nvfp4ModelOpt:
      result = try NVFP4.dequantize(tensors, producer: .modelOpt, outputDType: .float32)
    case .nvfp4CompressedTensors:
      result = try NVFP4.dequantize(tensors, producer: .compressedTensors)
    default:
      throw ValidationError.unsupportedStorage(weight: name, storage: storage.rawValue)
    }
    return result.values
  }
}
