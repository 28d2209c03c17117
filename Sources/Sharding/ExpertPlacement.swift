/// Spreads one MoE layer's routed experts over a set of devices. Pure and deterministic.
public enum ExpertPlacement {
  /// One routed expert to place.
  public struct Expert: Sendable, Equatable {
    /// The global expert index.
    public var index: Int
    /// Bytes of all its tensors (scales included).
    public var byteCount: Int
    /// Activation count from `--expert-load` (1 when unknown).
    public var load: Double

    public init(index: Int, byteCount: Int, load: Double = 1) {
      self.index = index
      self.byteCount = byteCount
      self.load = load
    }
  }

  /// Places `experts` (ascending index) on `deviceCount` devices.
  ///
  /// - Parameters:
  ///   - capacities: per device, for `.balanced` (fill relative to capacity when all are known).
  ///   - redundantCount: extra replicas (`.load` only): one at a time to the expert with the highest load
  ///     per replica (EPLB's rule); each replica goes to the least-loaded device not holding that expert.
  /// - Returns: per expert (parallel to `experts`), the devices holding it (indices into `0..<deviceCount`),
  ///   ascending; one device unless replicated.
  public static func place(
    _ experts: [Expert], deviceCount: Int, strategy: ExpertStrategy, capacities: [Int?] = [],
    redundantCount: Int = 0, layer: Int = 0
  ) throws(ShardingError) -> [[Int]] {
    let m = experts.count
    guard deviceCount >= 1 else { throw .noDevices }
    guard m > 0 else { return [] }
    switch strategy {
    case .contiguous:
      // Position p goes to floor(p·n/m): with n | m, device r gets [r·m/n, (r+1)·m/n).
      return (0..<m).map { [($0 * deviceCount) / m] }
    case .roundRobin:
      return (0..<m).map { [$0 % deviceCount] }
    case .balanced:
      let known = capacities.count == deviceCount && capacities.allSatisfy { ($0 ?? 0) > 0 }
      var bytes = [Double](repeating: 0, count: deviceCount)
      var counts = [Int](repeating: 0, count: deviceCount)
      var result = [[Int]](repeating: [], count: m)
      let order = (0..<m).sorted { experts[$0].byteCount != experts[$1].byteCount ? experts[$0].byteCount > experts[$1].byteCount : $0 < $1 }
      for position in order {
        var best = 0
        for d in 1..<deviceCount {
          let lhs = known ? bytes[d] / Double(capacities[d] ?? 1) : bytes[d]
          let rhs = known ? bytes[best] / Double(capacities[best] ?? 1) : bytes[best]
          if lhs < rhs || (lhs == rhs && counts[d] < counts[best]) { best = d }
        }
        bytes[best] += Double(experts[position].byteCount)
        counts[best] += 1
        result[position] = [best]
      }
      return result
    case .load:
      var replicas = [Int](repeating: 1, count: m)
      for _ in 0..<redundantCount {
        var best = -1
        for p in 0..<m where replicas[p] < deviceCount {
          if best < 0 || experts[p].load / Double(replicas[p]) > experts[best].load / Double(replicas[best]) { best = p }
        }
        guard best >= 0 else {
          throw .tooManyReplicas(layer: layer, requested: redundantCount, deviceCount: deviceCount, expertCount: m)
        }
        replicas[best] += 1
      }
      // Physical experts (one per replica), heaviest first, each onto the least-loaded eligible device.
      var physical: [(position: Int, load: Double)] = []
      for p in 0..<m {
        for _ in 0..<replicas[p] { physical.append((p, experts[p].load / Double(replicas[p]))) }
      }
      physical.sort { $0.load != $1.load ? $0.load > $1.load : $0.position < $1.position }
      var load = [Double](repeating: 0, count: deviceCount)
      var counts = [Int](repeating: 0, count: deviceCount)
      var result = [[Int]](repeating: [], count: m)
      for item in physical {
        var best = -1
        for d in 0..<deviceCount where !result[item.position].contains(d) {
          if best < 0 || load[d] < load[best] || (load[d] == load[best] && counts[d] < counts[best]) { best = d }
        }
        // Always found: an expert has at most deviceCount replicas.
        guard best >= 0 else { continue }
        load[best] += item.load
        counts[best] += 1
        result[item.position].append(best)
      }
      return result.map { $0.sorted() }
    }
  }
}
