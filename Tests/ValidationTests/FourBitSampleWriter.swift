import Checkpoint
import Foundation
import Pipeline
import Quantization
import SafeTensors
import Testing
import TensorCore

/// Writes 4-bit conversions of the BF16 sample for `smelt validate` baselines (until `smelt convert` has 4-bit
/// targets): every weight DeepSeek's release quantizes becomes int4 (compressed-tensors pack-quantized,
/// symmetric, group 64: the largest group dividing every input width of the sample, whose expert
/// `down_proj` has 64 inputs), MXFP4 or NVFP4 (compressed-tensors layouts); everything else is copied.
/// Runs only with `SMELT_FOUR_BIT_SAMPLES=DIR` set.
@Suite("4-bit sample conversions (on demand)")
struct FourBitSampleWriter {
  static let directory = ProcessInfo.processInfo.environment["SMELT_FOUR_BIT_SAMPLES"]

  @Test(
    "write int4-g64, MXFP4 and NVFP4 conversions of the BF16 sample",
    .enabled(if: directory != nil, "set SMELT_FOUR_BIT_SAMPLES=DIR to write them"))
  func write() throws {
    let root = try #require(Self.directory)
    let sample = try Checkpoint.open(Fixtures.bf16Sample)
    for format in ["int4-g64", "mxfp4", "nvfp4"] {
      var tensors: [(String, DType, [Int], [UInt8])] = []
      for name in sample.tensorNames {
        let view = try sample.tensor(name)
        let quantized = sample.family.releaseQuantizes(name, shape: view.shape, width: .fourBit, classifier: sample.classifier)
        guard quantized, view.dtype == .bfloat16 else {
          tensors.append((name, view.dtype, view.shape, view.copyBytes()))
          continue
        }
        let rows = view.shape[0], columns = view.shape[1]
        var values = [Float](repeating: 0, count: rows * columns)
        try values.withUnsafeMutableBufferPointer { out in
          try ElementCodec.decode(view.bytes, dtype: .bfloat16, into: out)
        }
        let packed: [PackedTensor] = try values.withUnsafeBufferPointer { buffer in
          let matrix = try WeightMatrix(values: buffer, rowCount: rows, columnCount: columns, dtype: .bfloat16)
          switch format {
          case "int4-g64":
            return Int4PackQuantized.tensors(try Int4GroupQuantizer.quantize(matrix, groupSize: 64, symmetry: .symmetric))
          case "mxfp4":
            return MXFP4.compressedTensorsTensors(try MXFP4.quantize(matrix, rule: .compressedTensors))
          default:
            return NVFP4.tensors(try NVFP4.quantize(matrix, producer: .compressedTensors))
          }
        }
        let module = String(name.dropLast(".weight".count))
        tensors += packed.map { ("\(module).\($0.nameSuffix)", $0.dtype, $0.shape, $0.bytes) }
      }
      let output = root + "/" + format
      try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
      let layout = try SafeTensorsLayout(tensors: tensors.map { PlannedTensor(name: $0.0, dtype: $0.1, shape: $0.2) })
      let writer = try SafeTensorsFileWriter(path: output + "/model.safetensors", layout: layout)
      for (name, _, _, bytes) in tensors { try writer.write(tensorNamed: name, bytes: bytes) }
      try writer.commit()
      try? FileManager.default.removeItem(atPath: output + "/config.json")
      try FileManager.default.copyItem(atPath: Fixtures.bf16Sample + "/config.json", toPath: output + "/config.json")
    }
  }
}
