import Checkpoint
import Quantization
import SafeTensors
import TensorCore

/// Execution of group-format jobs (4-bit layouts, MLX 8-bit) and whole-tensor decoding of sources that do not
/// stream by rows. A weight is quantized whole: NVFP4 needs the tensor's amax, GPTQ stores its transpose, and a
/// linear weight's F32 copy is at most a few hundred MB.
extension ConversionRunner {
  /// Rows `range` of a source that decodes whole (compressed-tensors FP8 and the 4-bit layouts), via
  /// `WeightDecoding`. The runner asks for whole tensors of these sources, so each is decoded once.
  func decodeWhole(_ job: ConversionJob, rows range: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
    let decoded: WeightDecoding.DecodedWeight
    do { decoded = try WeightDecoding.decode(group: job.group, in: checkpoint) } catch {
      throw ConversionError.unsupported(tensor: job.group.modulePath, reason: "\(error)")
    }
    let start = range.lowerBound * job.columns
    let count = range.count * job.columns
    guard decoded.values.count == job.rows * job.columns, destination.count == count else {
      throw ConversionError.numeric(
        tensor: job.group.modulePath, reason: "decoded \(decoded.values.count) values, expected \(job.rows) x \(job.columns)")
    }
    decoded.values.withUnsafeBufferPointer { source in
      _ = destination.initialize(from: UnsafeBufferPointer(rebasing: source[start..<(start + count)]))
    }
  }

  /// Decodes the job's whole source weight to F32.
  func decodeSourceWeight(_ job: ConversionJob) throws -> [Float] {
    let group = job.group
    if WeightDecoding.streamsRows(group.storage) {
      var values = [Float](repeating: 0, count: job.rows * job.columns)
      do {
        try values.withUnsafeMutableBufferPointer { buffer in
          try WeightDecoding.decodeRows(group: group, in: checkpoint, rows: 0..<job.rows, into: buffer)
        }
      } catch {
        throw ConversionError.numeric(tensor: WeightDecoding.logicalName(of: group), reason: "\(error)")
      }
      return values
    }
    do { return try WeightDecoding.decode(group: group, in: checkpoint).values } catch {
      throw ConversionError.unsupported(tensor: group.modulePath, reason: "\(error)")
    }
  }

  /// Quantizes one weight into a group layout, writes its tensors and reports the round-trip error of what the
  /// consumer's own dequantizer reads back.
  func quantizeGroup(_ job: ConversionJob, _ groupJob: GroupJob, writer: SafeTensorsFileWriter) throws -> TensorReport {
    let name = WeightDecoding.logicalName(of: job.group)
    let format = groupJob.format
    let values = try decodeSourceWeight(job)
    let tensors: [PackedTensor]
    do {
      tensors = try values.withUnsafeBufferPointer { buffer throws(FormatQuantizationError) in
        let weight = try WeightMatrix(values: buffer, rowCount: job.rows, columnCount: job.columns, dtype: groupJob.weightDType)
        return try format.quantize(weight, search: groupJob.search, scaleDType: groupJob.scaleDType)
      }
    } catch {
      throw ConversionError.numeric(tensor: name, reason: "\(error)")
    }
    let module = TensorName(name).modulePath
    guard tensors.count == job.outputs.count else {
      throw ConversionError.numeric(tensor: name, reason: "quantizer produced \(tensors.count) tensors, the plan expects \(job.outputs.count)")
    }
    for (tensor, planned) in zip(tensors, job.outputs) {
      let tensorName = format.tensorName(module: module, suffix: tensor.nameSuffix)
      guard tensorName == planned.name, tensor.dtype == planned.dtype, tensor.shape == planned.shape else {
        throw ConversionError.numeric(
          tensor: name,
          reason: "quantizer produced \(tensorName) \(tensor.dtype) \(tensor.shape), the plan expects \(planned.name) \(planned.dtype) \(planned.shape)")
      }
      try tensor.bytes.withUnsafeBytes { try writer.write(tensorNamed: tensorName, bytes: $0) }
    }
    // The error of what the consumer reads back (its dequantizer's rounding included).
    let geometry = WeightGeometry(
      shape: [job.rows, job.columns], rows: job.rows, columns: job.columns, dtype: groupJob.weightDType,
      groupSize: format.groupSize, bits: format.bits)
    let back = try WeightDecoding.dequantize(tensors, storage: format.storage, geometry: geometry, module: module)
    var errors = ErrorAccumulator()
    values.withUnsafeBufferPointer { reference in
      back.values.withUnsafeBufferPointer { approximation in errors.add(reference: reference, approximation: approximation) }
    }
    return TensorReport(
      name: name, action: format.name + (groupJob.search ? " --search" : ""), snrDecibels: errors.snrDecibels,
      maxAbsoluteError: errors.maxAbsoluteError)
  }
}
