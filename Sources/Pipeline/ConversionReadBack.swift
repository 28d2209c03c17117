import Checkpoint
import Quantization
import TensorCore
import WeightFormats

extension ConversionRunner {
  /// The weight of job `index` as the output's consumer reads it back: the source decoded to F32, converted
  /// exactly as `run` converts it (the same quantizer, scale dtype, fused-sibling amax), then decoded by the
  /// format's own dequantizer; `nil` when the job leaves the values unchanged (a copy, a lossless repack).
  ///
  /// Nothing is written: `validate --sensitivity` measures a conversion of one tensor group in memory with it.
  /// The values are row-major `[rows, columns]` of the job (the logical weight flattened past dimension 0).
  ///
  /// - Throws: `ConversionError.unsupported` for an FP8 job (whose quantizer writes row chunks to the output:
  ///   measure FP8 targets by converting and validating), or the decoder's and quantizer's errors.
  public func readBack(job index: Int) throws -> [Float]? {
    let job = plan.jobs[index]
    switch job.action {
    case .copy, .repack:
      return nil
    case .cast(let dtype):
      let values = try decodeSourceWeight(job)
      switch dtype {
      case .bfloat16: return values.map { BFloat16.float(fromBits: BFloat16.bits(from: $0)) }
      case .float16: return values.map { Float16Conversion.float(fromBits: Float16Conversion.bits(from: $0)) }
      default: return values
      }
    case .group(let groupJob):
      let (_, tensors) = try quantizedTensors(job, groupJob)
      let format = groupJob.format
      let geometry = WeightGeometry(
        shape: [job.rows, job.columns], rows: job.rows, columns: job.columns, dtype: groupJob.weightDType,
        groupSize: format.groupSize, bits: format.bits)
      let name = WeightDecoding.logicalName(of: job.group)
      return try WeightDecoding.dequantize(tensors, storage: format.storage, geometry: geometry, module: TensorName.modulePath(of: name))
        .values
    case .fp8:
      throw ConversionError.unsupported(
        tensor: WeightDecoding.logicalName(of: job.group),
        reason: "FP8 targets are not read back in memory; convert with the scheme and run smelt validate --level model")
    }
  }
}
