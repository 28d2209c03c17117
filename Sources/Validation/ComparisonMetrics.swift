#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import TensorCore

/// How far a candidate tensor (or layer output) is from the reference, element by element
/// (`quant-formats.md` §6).
public struct ComparisonMetrics: Sendable, Equatable {
  /// Elements compared.
  public var elementCount: Int
  /// `10·log10(Σ ref² / Σ (ref − cand)²)`: `+inf` when identical; `nil` when the reference is all zero
  /// ("zero reference": no signal to measure noise against).
  public var snrDecibels: Double?
  /// `Σ ref·cand / (‖ref‖·‖cand‖)`; 1 when both are all zero, 0 when only one is.
  public var cosineSimilarity: Double
  /// `max |ref − cand|`.
  public var maxAbsoluteError: Double
  /// `max |ref − cand| / |ref|` over elements whose reference is non-zero.
  public var maxRelativeError: Double
  /// `max |ref|`.
  public var referenceMaxAbsolute: Double
  /// `max |ref − cand| / max |ref|`: the worst single error relative to the tensor's range (`nil` for a zero
  /// reference). Quantization bounds it (FP8 E4M3 with amax scales: 16/448 ≈ 0.036; BF16: 2^-9), so a few
  /// corrupted elements that barely move the SNR stand out here.
  public var peakError: Double? { referenceMaxAbsolute > 0 ? maxAbsoluteError / referenceMaxAbsolute : nil }
  /// The reference is all zero (a skeleton checkpoint, an all-zero block of a real one).
  public var referenceIsZero: Bool
  /// The candidate is all zero too (only meaningful with `referenceIsZero`).
  public var candidateIsZero: Bool
  /// Candidate elements that are NaN or infinite (a corrupt checkpoint; never acceptable).
  public var nonFiniteCount: Int

  /// Compares two equally long buffers (multithreaded; the sums are deterministic).
  public init(reference: [Float], candidate: [Float]) {
    precondition(reference.count == candidate.count, "compared buffers must have equal length")
    var accumulator = MetricsAccumulator()
    reference.withUnsafeBufferPointer { r in
      candidate.withUnsafeBufferPointer { c in accumulator.addParallel(reference: r, candidate: c) }
    }
    self = accumulator.metrics
  }

  init(
    elementCount: Int, snrDecibels: Double?, cosineSimilarity: Double, maxAbsoluteError: Double,
    maxRelativeError: Double, referenceMaxAbsolute: Double, referenceIsZero: Bool, candidateIsZero: Bool,
    nonFiniteCount: Int
  ) {
    self.elementCount = elementCount
    self.snrDecibels = snrDecibels
    self.cosineSimilarity = cosineSimilarity
    self.maxAbsoluteError = maxAbsoluteError
    self.maxRelativeError = maxRelativeError
    self.referenceMaxAbsolute = referenceMaxAbsolute
    self.referenceIsZero = referenceIsZero
    self.candidateIsZero = candidateIsZero
    self.nonFiniteCount = nonFiniteCount
  }
}

/// Streaming sums behind `ComparisonMetrics`: add row chunks of a large tensor one after another.
public struct MetricsAccumulator: Sendable {
  var elementCount = 0
  var signal = 0.0
  var noise = 0.0
  var dot = 0.0
  var candidateEnergy = 0.0
  var maxAbsolute = 0.0
  var maxRelative = 0.0
  var maxReference = 0.0
  var nonFiniteCount = 0

  public init() {}

  init(
    elementCount: Int, signal: Double, noise: Double, dot: Double, candidateEnergy: Double, maxAbsolute: Double,
    maxRelative: Double, maxReference: Double, nonFiniteCount: Int
  ) {
    self.elementCount = elementCount
    self.signal = signal
    self.noise = noise
    self.dot = dot
    self.candidateEnergy = candidateEnergy
    self.maxAbsolute = maxAbsolute
    self.maxRelative = maxRelative
    self.maxReference = maxReference
    self.nonFiniteCount = nonFiniteCount
  }

  /// Adds a chunk (single-threaded).
  public mutating func add(reference: UnsafeBufferPointer<Float>, candidate: UnsafeBufferPointer<Float>) {
    precondition(reference.count == candidate.count, "compared buffers must have equal length")
    var signal = 0.0, noise = 0.0, dot = 0.0, energy = 0.0, maxAbsolute = 0.0, maxRelative = 0.0, maxReference = 0.0
    var nonFinite = 0
    for i in 0..<reference.count {
      let c = candidate[i]
      if !c.isFinite {
        nonFinite += 1
        continue
      }
      let r = Double(reference[i]), a = Double(c)
      let d = r - a
      signal += r * r
      noise += d * d
      dot += r * a
      energy += a * a
      let magnitude = abs(d)
      if magnitude > maxAbsolute { maxAbsolute = magnitude }
      if abs(r) > maxReference { maxReference = abs(r) }
      if r != 0 {
        let relative = magnitude / abs(r)
        if relative > maxRelative { maxRelative = relative }
      }
    }
    merge(
      MetricsAccumulator(
        elementCount: reference.count, signal: signal, noise: noise, dot: dot, candidateEnergy: energy,
        maxAbsolute: maxAbsolute, maxRelative: maxRelative, maxReference: maxReference, nonFiniteCount: nonFinite))
  }

  /// Adds a chunk using every core: fixed 64 Ki-element blocks summed in order, so results do not depend on
  /// the thread count.
  public mutating func addParallel(reference: UnsafeBufferPointer<Float>, candidate: UnsafeBufferPointer<Float>) {
    precondition(reference.count == candidate.count, "compared buffers must have equal length")
    let blockSize = 65_536
    let blockCount = (reference.count + blockSize - 1) / blockSize
    guard blockCount > 1 else {
      add(reference: reference, candidate: candidate)
      return
    }
    var partials = [MetricsAccumulator](repeating: MetricsAccumulator(), count: blockCount)
    partials.withUnsafeMutableBufferPointer { slots in
      let output = DisjointMutableBuffer(slots)
      let r = SharedRawBuffer(UnsafeRawBufferPointer(reference))
      let c = SharedRawBuffer(UnsafeRawBufferPointer(candidate))
      Parallel.forEachChunk(count: blockCount) { blocks in
        let reference = r.bytes.assumingMemoryBound(to: Float.self)
        let candidate = c.bytes.assumingMemoryBound(to: Float.self)
        for block in blocks {
          let range = (block * blockSize)..<min(reference.count, (block + 1) * blockSize)
          var partial = MetricsAccumulator()
          partial.add(
            reference: UnsafeBufferPointer(rebasing: reference[range]),
            candidate: UnsafeBufferPointer(rebasing: candidate[range]))
          output.buffer[block] = partial
        }
      }
    }
    for partial in partials { merge(partial) }
  }

  /// Adds another accumulator's sums.
  public mutating func merge(_ other: MetricsAccumulator) {
    elementCount += other.elementCount
    signal += other.signal
    noise += other.noise
    dot += other.dot
    candidateEnergy += other.candidateEnergy
    maxAbsolute = max(maxAbsolute, other.maxAbsolute)
    maxRelative = max(maxRelative, other.maxRelative)
    maxReference = max(maxReference, other.maxReference)
    nonFiniteCount += other.nonFiniteCount
  }

  /// The metrics of everything added so far.
  public var metrics: ComparisonMetrics {
    let snr: Double?
    if signal == 0 {
      snr = nil
    } else if noise == 0 {
      snr = .infinity
    } else {
      snr = 10 * log10(signal / noise)
    }
    let cosine: Double
    if signal == 0 && candidateEnergy == 0 {
      cosine = 1
    } else if signal == 0 || candidateEnergy == 0 {
      cosine = 0
    } else {
      cosine = dot / (signal.squareRoot() * candidateEnergy.squareRoot())
    }
    return ComparisonMetrics(
      elementCount: elementCount, snrDecibels: snr, cosineSimilarity: cosine, maxAbsoluteError: maxAbsolute,
      maxRelativeError: maxRelative, referenceMaxAbsolute: maxReference, referenceIsZero: signal == 0, candidateIsZero: candidateEnergy == 0,
      nonFiniteCount: nonFiniteCount)
  }
}
