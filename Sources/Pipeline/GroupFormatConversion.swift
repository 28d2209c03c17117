import Checkpoint
import Synchronization
import Quantization
import SafeTensors
import TensorCore
import WeightFormats

/// Execution of group-format jobs (4-bit layouts, MLX 8-bit) and whole-tensor decoding of sources that do not
/// stream by rows. A weight is quantized whole: NVFP4 needs the tensor's amax, GPTQ stores its transpose, and a
/// linear weight's F32 copy is at most a few hundred MB.
extension ConversionRunner {
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
  func quantizeGroup(
    _ job: ConversionJob, _ groupJob: GroupJob, write: (String, UnsafeRawBufferPointer) throws -> Void
  ) throws -> TensorReport {
    let name = WeightDecoding.logicalName(of: job.group)
    let format = groupJob.format
    let (values, tensors) = try quantizedTensors(job, groupJob)
    let module = TensorName.modulePath(of: name)
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
      try tensor.bytes.withUnsafeBytes { try write(tensorName, $0) }
    }
    // The error of what the consumer reads back (its dequantizer's rounding included).
    let errors = try roundTripError(tensors, format: format, values: values, rows: job.rows, columns: job.columns,
      dtype: groupJob.weightDType, module: module)
    return TensorReport(
      name: name, action: format.name + (groupJob.search ? " --search" : ""), snrDecibels: errors.snrDecibels,
      maxAbsoluteError: errors.maxAbsoluteError)
  }

  /// The job's source weight decoded to F32 and its tensors in the group layout (what `quantizeGroup` writes).
  func quantizedTensors(_ job: ConversionJob, _ groupJob: GroupJob) throws -> (values: [Float], tensors: [PackedTensor]) {
    let values = try decodeSourceWeight(job)
    let tensorAmax = try fusedAmax(groupJob, own: values)
    do {
      let tensors = try values.withUnsafeBufferPointer { buffer throws(FormatQuantizationError) in
        let weight = try WeightMatrix(values: buffer, rowCount: job.rows, columnCount: job.columns, dtype: groupJob.weightDType)
        return try groupJob.format.quantize(weight, search: groupJob.search, scaleDType: groupJob.scaleDType, tensorAmax: tensorAmax)
      }
      return (values, tensors)
    } catch {
      throw ConversionError.numeric(tensor: WeightDecoding.logicalName(of: job.group), reason: "\(error)")
    }
  }

  /// The largest |x| over a weight's fused siblings (`nil` when it has none): each sibling's source decoded
  /// once (cached for the others), so a fused layer's per-tensor scale does not depend on which sibling is
  /// quantized first.
  func fusedAmax(_ groupJob: GroupJob, own values: [Float]) throws -> Float? {
    guard !groupJob.fusedJobs.isEmpty else { return nil }
    var amax: Float = 0
    for index in groupJob.fusedJobs {
      if let known = siblingAmax.withLock({ $0[index] }) {
        amax = max(amax, known)
        continue
      }
      let sibling = try decodeSourceWeight(plan.jobs[index])
      let value = sibling.reduce(Float(0)) { max($0, abs($1)) }
      siblingAmax.withLock { $0[index] = value }
      amax = max(amax, value)
    }
    return max(amax, values.reduce(Float(0)) { max($0, abs($1)) })
  }

  /// Round-trip error of `tensors` against `values`: the format's dequantizer on row slices, slices in parallel
  /// (merged in order, so the result does not depend on scheduling); whole for a layout that cannot be cut by
  /// rows (GPTQ).
  func roundTripError(
    _ tensors: [PackedTensor], format: GroupFormat, values: [Float], rows: Int, columns: Int, dtype: DType, module: String
  ) throws -> ErrorStatistics {
    let target = max(8, rows / max(1, Parallel.defaultThreadCount * 4))
    let sliceRows = format.layout.slicesByRows ? min(rows, (target + 7) / 8 * 8) : rows
    let sliceCount = (rows + sliceRows - 1) / sliceRows
    let results = Mutex([Result<ErrorStatistics, any Error>?](repeating: nil, count: sliceCount))
    Parallel.forEachChunk(count: sliceCount) { range in
      for slice in range {
        let start = slice * sliceRows
        let end = min(rows, start + sliceRows)
        let result = Result { () throws -> ErrorStatistics in
          let part = sliceCount == 1 ? tensors : format.layout.rowSlice(tensors, rows: rows, range: start..<end)
          let geometry = WeightGeometry(
            shape: [end - start, columns], rows: end - start, columns: columns, dtype: dtype, groupSize: format.groupSize,
            bits: format.bits)
          let back = try WeightDecoding.dequantize(part, storage: format.storage, geometry: geometry, module: module)
          var errors = ErrorStatistics()
          values.withUnsafeBufferPointer { all in
            back.values.withUnsafeBufferPointer { approximation in
              errors.add(reference: UnsafeBufferPointer(rebasing: all[(start * columns)..<(end * columns)]), candidate: approximation)
            }
          }
          return errors
        }
        results.withLock { $0[slice] = result }
      }
    }
    var total = ErrorStatistics()
    for result in results.withLock({ $0 }) {
      guard let result else { continue }
      total.merge(try result.get())
    }
    return total
  }
}

/// Row slices of packed row-major layouts (everything but GPTQ).
