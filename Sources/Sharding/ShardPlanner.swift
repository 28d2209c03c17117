import Checkpoint
import TensorCore
import WeightFormats

/// Another strategy's plan for the same checkpoint and options (`ShardPlanner.alternatives(to:)`).
public struct StrategyAlternative: Sendable {
  public var strategy: ExpertStrategy
  public var plan: ShardPlan
}

/// Turns a checkpoint description and options into a `ShardPlan`. Pure: reads no tensor data.
///
/// Placement rules, in order:
/// 1. The unit of placement is a routed expert (all its weights and their quantization companions) or one
///    weight group (a weight with its companions, or a lone tensor such as a norm).
/// 2. A unit matched by a `--place` rule (first rule matching any of the unit's tensors) goes to that
///    rule's devices only. Other units go to the *free* devices: those no rule names (all devices when
///    rules name every device).
/// 3. Other units are replicated to every target device, or, with tensor parallelism, split along
///    convert.py's dim for their module, or the family's `TensorParallelPlan`.
/// 4. Routed experts are spread over their target devices by the strategy, per layer: each expert whole on
///    one device, plus replicas with `--redundant`. A device's expert budget is its capacity less
///    `--reserve` and less the other units it holds; `contiguous` and `balanced` place within the budgets
///    (`ExpertPlacement`).
public enum ShardPlanner {
  public static func plan(_ source: ShardSource, options: ShardOptions) throws(ShardingError) -> ShardPlan {
    var builder = try PlanBuilder(source: source, options: options)
    try builder.placeOtherUnits()
    try builder.placeExperts()
    return try builder.makePlan()
  }

  /// The plan each other strategy makes with otherwise the same options, for a plan that does not fit:
  /// `contiguous`, `round-robin`, `balanced`, and `load` when there is an expert-load file. None for the
  /// deepseek-mp layout (its placement is fixed), for a checkpoint without routed experts, or with
  /// `--redundant` (replicas need `load`); an alternative that cannot be planned is left out.
  public static func alternatives(to plan: ShardPlan) -> [StrategyAlternative] {
    let options = plan.options
    guard options.layout == .huggingFace, !plan.moeLayers.isEmpty, options.redundantExpertCount == 0 else { return [] }
    var strategies: [ExpertStrategy] = [.contiguous, .roundRobin, .balanced]
    if options.expertLoad != nil { strategies.append(.load) }
    return strategies.filter { $0 != options.strategy }.compactMap { strategy in
      var other = options
      other.strategy = strategy
      guard let alternative = try? ShardPlanner.plan(plan.source, options: other) else { return nil }
      return StrategyAlternative(strategy: strategy, plan: alternative)
    }
  }

  /// Decides the split dim of every tensor of `group` under the family's tensor-parallel `plan` (deepseek-mp:
  /// convert.py's renaming table), or throws why it cannot be split.
  static func planSplit(
    _ group: SourceGroup, source: ShardSource, plan: TensorParallelPlan, config: ModelConfig?, deviceCount n: Int,
    blockSize: [Int], deepSeek: Bool, into splitDims: inout [Int?]
  ) throws(ShardingError) {
    let tensors = source.tensors
    guard let primary = group.parts["weight"] ?? group.tensorIndices.first else { return }
    let key = TensorParallelPlan.moduleKey(tensors[primary].name)
    if !deepSeek, let refusal = plan.refusal { throw .splitUnsupported(tensor: tensors[primary].name, reason: refusal) }
    if !deepSeek, let reason = plan.refusedModules[String(key)] {
      throw .splitUnsupported(tensor: tensors[primary].name, reason: reason)
    }
    let dim: Int?
    if deepSeek {
      dim = try DeepSeekMPNaming.rename(tensors[primary].name).dim
    } else {
      dim = plan.splitDim(moduleKey: key)
    }
    guard let dim else { return }
    // Attention projections split on whole heads (grouped-query k/v heads, gpt-oss sinks).
    if !deepSeek, let head = plan.headAligned[String(key)], tensors[primary].shape.count > dim {
      let unit: Int?
      switch head {
      case .query(let perHead): unit = perHead ?? config?.headDim ?? config.flatMap { c in c.hiddenSize.flatMap { h in c.numAttentionHeads.map { h / max(1, $0) } } }
      case .keyValue: unit = config?.headDim ?? config.flatMap { c in c.hiddenSize.flatMap { h in c.numAttentionHeads.map { h / max(1, $0) } } }
      }
      let size = tensors[primary].shape[dim]
      if let unit, unit > 0, size % n == 0, (size / n) % unit != 0 {
        throw .splitCutsHead(tensor: tensors[primary].name, size: size, headSize: unit, deviceCount: n)
      }
    }
    func checkDivides(_ t: Int) throws(ShardingError) {
      let tensor = tensors[t]
      guard tensor.dtype.byteWidth != nil else {
        throw .splitUnsupported(tensor: tensor.name, reason: "\(tensor.dtype) packs several elements per byte")
      }
      guard tensor.shape[dim] % n == 0 else {
        throw .splitNotDivisible(tensor: tensor.name, dim: dim, size: tensor.shape[dim], deviceCount: n)
      }
    }
    switch group.storage {
    case .plain:
      for t in group.tensorIndices where tensors[t].shape.count > dim {
        try checkDivides(t)
        splitDims[t] = dim
      }
    case .fp8Block:
      guard let weight = group.parts["weight"], let scale = group.parts["weight_scale_inv"],
        tensors[weight].shape.count == 2, tensors[scale].shape.count == 2
      else {
        throw .splitUnsupported(tensor: tensors[primary].name, reason: "an FP8 block-scaled weight must be 2-D with a 2-D weight_scale_inv")
      }
      try checkDivides(weight)
      let size = tensors[weight].shape[dim]
      let block = dim < blockSize.count ? max(1, blockSize[dim]) : 128
      guard (size / n) % block == 0 else {
        throw .splitCutsBlock(tensor: tensors[weight].name, scale: tensors[scale].name, dim: dim, size: size, block: block, deviceCount: n)
      }
      guard tensors[scale].shape[dim] == (size + block - 1) / block else {
        throw .splitUnsupported(tensor: tensors[scale].name, reason: "its shape \(tensors[scale].shape) does not match \(block)-blocks of \(tensors[weight].shape)")
      }
      splitDims[weight] = dim
      splitDims[scale] = dim
    default:
      throw .splitUnsupported(tensor: tensors[primary].name, reason: "\(group.storage.rawValue) weights cannot be sliced; only plain and FP8 block-scaled (weight_scale_inv) weights can")
    }
  }
}
