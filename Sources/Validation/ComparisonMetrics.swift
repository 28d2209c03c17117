import Quantization
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
    var statistics = ErrorStatistics()
    reference.withUnsafeBufferPointer { r in
      candidate.withUnsafeBufferPointer { c in statistics.addParallel(reference: r, candidate: c) }
    }
    self.init(statistics)
  }

  /// Validation's view of the shared `ErrorStatistics` (one non-finite policy with convert: elements where
  /// either side is NaN or infinite are counted, not summed).
  public init(_ statistics: ErrorStatistics) {
    let zero = statistics.signalEnergy == 0
    elementCount = statistics.elementCount
    snrDecibels = zero ? nil : statistics.snrDecibels
    cosineSimilarity = statistics.cosineSimilarity
    maxAbsoluteError = statistics.maxAbsoluteError
    maxRelativeError = statistics.maxRelativeError
    referenceMaxAbsolute = statistics.referenceMaxAbsolute
    referenceIsZero = zero
    candidateIsZero = statistics.candidateEnergy == 0
    nonFiniteCount = statistics.nonFiniteCount
  }

  /// No elements compared yet.
  public static let empty = ComparisonMetrics(ErrorStatistics())
}
