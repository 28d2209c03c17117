/// How routed experts are spread over the devices that take them.
public enum ExpertStrategy: String, Sendable, CaseIterable {
  /// Device r of n gets the r-th contiguous range of experts, [r·E/n, (r+1)·E/n) (DeepSeek's convert.py and
  /// vLLM's expert-parallel default) when that fits the budgets; otherwise consecutive ranges sized by the
  /// devices' budgets, in device order.
  case contiguous
  /// Expert e goes to device e mod n.
  case roundRobin = "round-robin"
  /// Largest experts first, each onto the device with the fewest expert bytes in this layer (relative to
  /// its budget when every device has one) among those it still fits; when that leaves an expert without
  /// room, any placement of all layers that fits (`ExpertPlacement.fit`).
  case balanced
  /// By measured activation counts (`--expert-load`): hottest first onto the least-loaded device.
  case load
}

/// The output layout.
public enum ShardLayout: String, Sendable, CaseIterable {
  /// `OUT/<device>/` is a Hugging Face checkpoint (size-sharded files, index, config, tokenizer); tensor
  /// names are unchanged, routed experts keep their global index.
  case huggingFace = "hf"
  /// DeepSeek's inference demo: `OUT/model{i}-mp{N}.safetensors`, keys renamed as `convert.py` does,
  /// routed experts contiguous per rank, other tensors split along convert.py's dims.
  case deepSeekMP = "deepseek-mp"
}

/// Everything that decides a shard plan (apart from the checkpoint itself).
public struct ShardOptions: Sendable {
  public var devices: [ShardDevice]
  public var strategy: ExpertStrategy
  /// Per-layer activation counts; required by `.load` and `redundantExpertCount`.
  public var expertLoad: ExpertLoad?
  /// Extra replicas of the hottest experts per MoE layer.
  public var redundantExpertCount: Int
  public var rules: [PlacementRule]
  /// Split attention, dense MLP, shared experts, embeddings and the head along convert.py's dims.
  public var tensorParallel: Bool
  public var layout: ShardLayout
  /// Largest output file (Hugging Face layout); a bigger tensor gets a file of its own.
  public var maxFileByteCount: Int
  /// Leave out the MTP layer(s) (`--drop-mtp`; `deepseek-mp` always does) and declare none in config.json.
  public var dropMTP = false
  /// Headroom kept free on every device with a capacity (KV cache, activations): a device's budget is its
  /// capacity minus this.
  public var reserveByteCount: Int

  /// Hugging Face's default shard size.
  public static let defaultMaxFileByteCount = 5_000_000_000

  public init(
    devices: [ShardDevice], strategy: ExpertStrategy = .contiguous, expertLoad: ExpertLoad? = nil,
    redundantExpertCount: Int = 0, rules: [PlacementRule] = [], tensorParallel: Bool = false,
    layout: ShardLayout = .huggingFace, maxFileByteCount: Int = ShardOptions.defaultMaxFileByteCount,
    reserveByteCount: Int = 0
  ) {
    self.devices = devices
    self.strategy = expertLoad != nil ? .load : strategy
    self.expertLoad = expertLoad
    self.redundantExpertCount = redundantExpertCount
    self.rules = rules
    self.tensorParallel = tensorParallel
    self.layout = layout
    self.maxFileByteCount = maxFileByteCount
    self.reserveByteCount = reserveByteCount
  }

  /// The strategy that places the routed experts: deepseek-mp's layout is always contiguous.
  public var effectiveStrategy: ExpertStrategy { layout == .deepSeekMP ? .contiguous : strategy }
}
