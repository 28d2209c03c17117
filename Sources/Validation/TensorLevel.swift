import Checkpoint
import Quantization
import ReferenceModel
import TensorCore
import WeightFormats
import WeightSources

extension Validator {
  /// The note on weights only the candidate has (not compared), when there are any.
  func candidateOnlyNote() -> String? {
    // `contains`: a wrapper's reference also answers to the Hugging Face names its GGUF holds; the other way
    // round, a wrapper candidate's release names stand for the GGUF reference's Hugging Face ones.
    func inReference(_ name: String) -> Bool {
      reference.contains(name) || candidate.wrapperPrefixes.contains { canonical, release in
        name.hasPrefix(release) && reference.contains(canonical + name.dropFirst(release.count))
      }
    }
    let extra = candidate.logicalNames.filter { !inReference($0) && isSelected(TensorName($0)) }
    guard !extra.isEmpty else { return nil }
    return "the candidate has \(extra.count) weight(s) the reference lacks (not compared), e.g. '\(extra[0])'"
  }

  /// Tensor level, one weight: dequantized on both sides and compared in row chunks (at most
  /// `chunkElementCount` elements per side in memory). Fused experts a side holds input-major (gpt-oss's
  /// plain `[E, in, out]`) are compared output-major, as its quantized forms hold them.
  func compareTensor(_ name: String, _ parsed: TensorName) -> TensorComparison {
    var result = TensorComparison(
      name: name, layer: parsed.layer, expert: parsed.expert, shape: [],
      referenceStorage: reference.storageDescription(of: name), candidateStorage: candidate.storageDescription(of: name),
      metrics: ComparisonMetrics.empty, minimumSNRDecibels: 0, maximumPeakError: 0, failure: nil, note: nil)
    guard candidate.storage(of: name) != nil else {
      if candidate.leavesOut(name) {
        result.leftOut = true
        result.note = "not in the candidate by design (a shard's skipped_tensors; a GGUF's tied lm_head, dropped MTP block or vision tower)"
      } else {
        result.failure = "missing from the candidate"
      }
      return result
    }
    let judged = candidate.judgedStorages(of: name)
    let minimumSNR = options.thresholds.minimumSNR(storages: judged)
    let maximumPeak = options.thresholds.maximumPeak(storages: judged)
    result.minimumSNRDecibels = minimumSNR
    result.maximumPeakError = maximumPeak
    do {
      let referenceTransposed = reference.holdsInputMajorExperts(name)
      let candidateTransposed = candidate.holdsInputMajorExperts(name)
      let shape = Self.outputMajor(try reference.shape(of: name), transposed: referenceTransposed)
      result.shape = shape
      let candidateShape = Self.outputMajor(try candidate.shape(of: name), transposed: candidateTransposed)
      guard candidateShape == shape else {
        result.failure = "shape \(candidateShape) differs from the reference's \(shape)"
        return result
      }
      let rowCount = shape.first ?? 1
      let columns = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : 1
      let chunkRows = max(1, options.chunkElementCount / max(1, columns))
      var accumulator = ErrorStatistics()
      var start = 0
      while start < rowCount {
        let rows = start..<min(rowCount, start + chunkRows)
        // A 3-D tensor's rows are whole experts, so an input-major side is transposed expert by expert.
        let referenceRows = Self.outputMajor(try reference.weightRows(name, rows: rows).values, shape: shape, transposed: referenceTransposed)
        let candidateRows = Self.outputMajor(try candidate.weightRows(name, rows: rows).values, shape: shape, transposed: candidateTransposed)
        referenceRows.withUnsafeBufferPointer { r in
          candidateRows.withUnsafeBufferPointer { c in accumulator.addParallel(reference: r, candidate: c) }
        }
        start = rows.upperBound
      }
      result.metrics = ComparisonMetrics(accumulator)
      (result.failure, result.note) = judge(result.metrics, minimumSNR: minimumSNR, maximumPeak: maximumPeak)
    } catch {
      result.failure = "cannot compare: \(error)"
    }
    return result
  }

  /// `[E, out, in]` for an input-major `[E, in, out]` shape.
  static func outputMajor(_ shape: [Int], transposed: Bool) -> [Int] {
    transposed && shape.count == 3 ? [shape[0], shape[2], shape[1]] : shape
  }

  /// Whole experts of an input-major tensor (`values`: `[e, in, out]`) as `[e, out, in]`, where `shape` is the
  /// output-major shape `[E, out, in]`.
  static func outputMajor(_ values: [Float], shape: [Int], transposed: Bool) -> [Float] {
    guard transposed, shape.count == 3 else { return values }
    let (outputs, inputs) = (shape[1], shape[2])
    let perExpert = outputs * inputs
    guard perExpert > 0 else { return values }
    var result = [Float](repeating: 0, count: values.count)
    for base in stride(from: 0, to: values.count, by: perExpert) {
      for i in 0..<inputs {
        for o in 0..<outputs { result[base + o * inputs + i] = values[base + i * outputs + o] }
      }
    }
    return result
  }
}
