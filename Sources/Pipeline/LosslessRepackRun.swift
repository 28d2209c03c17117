import Checkpoint
import Quantization
import SafeTensors
import TensorCore
import WeightFormats

/// Execution of repack jobs: the source's codes and scales moved into the target layout, and the move proved
/// by decoding both sides — the source with its own format's decoder, the output with the target's — and
/// comparing bit for bit.
extension ConversionRunner {
  /// Repacks one weight, writes its tensors and reports it `repacked (lossless)`, or, for FP8 blocks whose
  /// exponent spread E4M3 cannot hold, `repacked (N of M blocks rounded)` with the error of those blocks.
  func repackGroup(
    _ job: ConversionJob, _ layout: RepackLayout, write: (String, UnsafeRawBufferPointer) throws -> Void
  ) throws -> TensorReport {
    let group = job.group
    let name = WeightDecoding.logicalName(of: group)
    let codes: MXFP4.Result
    let source: [Float]
    do {
      let geometry = try WeightDecoding.geometry(of: group, in: checkpoint)
      let tensors = try WeightDecoding.packedTensors(of: group, in: checkpoint)
      guard let found = try group.format.microscaledCodes(tensors, geometry: geometry, module: group.modulePath) else {
        throw ConversionError.unsupported(tensor: name, reason: "\(group.storage) stores no MXFP4 codes")
      }
      codes = found
      source = try WeightDecoding.decode(group: group, in: checkpoint).values
    } catch let error as ConversionError {
      throw error
    } catch {
      throw ConversionError.unsupported(tensor: name, reason: "\(error)")
    }
    let rows = codes.rowCount, columns = codes.columnCount
    let written: [[UInt8]]
    var decoded = [Float](repeating: 0, count: rows * columns)
    var inexactBlocks = 0, blockCount = 0
    do {
      switch layout {
      case .mxfp4(let format):
        guard let mxfp4 = format.layout(as: MXFP4Layout.self) else {
          throw ConversionError.unsupported(tensor: name, reason: "not an MXFP4 layout")
        }
        let tensors = mxfp4.tensors(codes)
        written = tensors.map(\.bytes)
        let geometry = WeightGeometry(
          shape: [rows, columns], rows: rows, columns: columns, dtype: .bfloat16, groupSize: MXFP4.blockSize, bits: 4)
        decoded = try WeightDecoding.dequantize(tensors, storage: format.storage, geometry: geometry, module: group.modulePath).values
        blockCount = codes.scales.count
      case .fp8(let scheme, let rule):
        guard case .block(let blockRows, let blockColumns) = scheme else {
          throw ConversionError.unsupported(tensor: name, reason: "FP8 repacks need block scales")
        }
        let fp8 = MXFP4.repackToFP8Blocks(codes, blockRows: blockRows, blockColumns: blockColumns)
        let scales = fp8.scales
        var scaleBytes = [UInt8](repeating: 0, count: scales.count * (rule.storageDType.bitWidth / 8))
        try scales.withUnsafeBufferPointer { values in
          try scaleBytes.withUnsafeMutableBytes { try ElementCodec.encode(values, to: rule.storageDType, into: $0) }
        }
        written = [fp8.codes, scaleBytes]
        // The output read back as the FP8 reader does: scales decoded from their stored dtype, `f32(q) · s`.
        var storedScales = [Float](repeating: 0, count: scales.count)
        try scaleBytes.withUnsafeBytes { bytes in
          try storedScales.withUnsafeMutableBufferPointer { try ElementCodec.decode(bytes, dtype: rule.storageDType, into: $0) }
        }
        let fp8Layout = try FP8BlockLayout(rows: rows, columns: columns, scheme: scheme)
        try fp8.codes.withUnsafeBytes { codeBytes in
          try storedScales.withUnsafeBufferPointer { scaleBuffer in
            try decoded.withUnsafeMutableBytes {
              try BlockFP8.dequantize(codeBytes, scales: scaleBuffer, layout: fp8Layout, to: .float32, into: $0)
            }
          }
        }
        inexactBlocks = fp8.inexactBlocks.count
        blockCount = scales.count
      }
    } catch let error as ConversionError {
      throw error
    } catch {
      throw ConversionError.numeric(tensor: name, reason: "\(error)")
    }
    guard written.count == job.outputs.count else {
      throw ConversionError.numeric(tensor: name, reason: "repack produced \(written.count) tensors, the plan expects \(job.outputs.count)")
    }
    for (bytes, planned) in zip(written, job.outputs) {
      guard bytes.count == ByteCount.of(planned.dtype, shape: planned.shape) else {
        throw ConversionError.numeric(tensor: name, reason: "repack produced \(bytes.count) bytes for \(planned.name) \(planned.dtype) \(planned.shape)")
      }
      try bytes.withUnsafeBytes { try write(planned.name, $0) }
    }
    // Both sides decoded: outside the reported blocks every value must match bit for bit.
    var errors = ErrorStatistics()
    var mismatched = 0
    for i in 0..<(rows * columns) where source[i].bitPattern != decoded[i].bitPattern && !(source[i].isNaN && decoded[i].isNaN) {
      mismatched += 1
    }
    source.withUnsafeBufferPointer { reference in
      decoded.withUnsafeBufferPointer { candidate in errors.add(reference: reference, candidate: candidate) }
    }
    if inexactBlocks == 0 && mismatched > 0 {
      throw ConversionError.numeric(
        tensor: name, reason: "repack is not bit-exact: \(mismatched) values differ after decoding both sides (a Smelt bug)")
    }
    let action = inexactBlocks == 0
      ? "repacked (lossless)" : "repacked (\(inexactBlocks) of \(blockCount) blocks rounded: exponent spread beyond E4M3)"
    return TensorReport(
      name: name, action: action, method: inexactBlocks == 0 ? "repacked (lossless)" : "repacked (inexact blocks)",
      snrDecibels: errors.snrDecibels, maxAbsoluteError: errors.maxAbsoluteError)
  }
}
