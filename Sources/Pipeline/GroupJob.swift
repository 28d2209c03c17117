import TensorCore
import WeightFormats

/// What a group-format job needs beyond its layout.
public struct GroupJob: Sendable, Hashable {
  public var format: GroupFormat
  /// Choose scales with the clip search instead of round-to-nearest.
  public var search: Bool
  /// The dtype the quantizer treats the weight as (the plain source dtype; F32 for decoded sources, so FP8
  /// checkpoints requantize from their exact F32 dequantization).
  public var weightDType: DType
  /// compressed-tensors int4 scale dtype (the weight dtype, or the model dtype for F32-decoded sources).
  public var scaleDType: DType
  /// Indices (into the plan's jobs) of the fused siblings whose per-tensor scale this weight shares, itself
  /// included (`FusedLinears`; empty when it has its own).
  public var fusedJobs: [Int] = []
}
