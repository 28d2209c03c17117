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
  ///   - budgets: per device, the most expert bytes it can take in this layer (`nil`: unlimited); empty when
  ///     no device has a capacity. `.contiguous` never crosses a budget while a later device remains;
  ///     `.balanced` fills relative to the budgets when every device has one and only onto devices the
  ///     expert still fits (when none does, onto the one with the most room).
  ///   - allowances: `.contiguous` only: the part of its budget each device should spend on this layer
  ///     (defaults to `budgets`). convert.py's ranges are kept when they fit the allowances; otherwise the
  ///     ranges follow `sharesOfLayer(byteCount:allowances:)`.
  ///   - redundantCount: extra replicas (`.load` only): one at a time to the expert with the highest load
  ///     per replica (EPLB's rule); each replica goes to the least-loaded device not holding that expert.
  /// - Returns: per expert (parallel to `experts`), the devices holding it (indices into `0..<deviceCount`),
  ///   ascending; one device unless replicated.
  public static func place(
    _ experts: [Expert], deviceCount: Int, strategy: ExpertStrategy, budgets: [Int?] = [], allowances: [Int?]? = nil,
    redundantCount: Int = 0, layer: Int = 0
  ) throws(ShardingError) -> [[Int]] {
    guard deviceCount >= 1 else { throw .noDevices }
    guard !experts.isEmpty else { return [] }
    let budgets = budgets.count == deviceCount ? budgets : [Int?](repeating: nil, count: deviceCount)
    switch strategy {
    case .contiguous:
      let allowances = allowances.flatMap { $0.count == deviceCount ? $0 : nil } ?? budgets
      return contiguous(experts, deviceCount: deviceCount, budgets: budgets, allowances: allowances).map { [$0] }
    case .roundRobin:
      return experts.indices.map { [$0 % deviceCount] }
    case .balanced:
      return balanced(experts, deviceCount: deviceCount, budgets: budgets).map { [$0] }
    case .load:
      return try byLoad(experts, deviceCount: deviceCount, redundantCount: redundantCount, layer: layer)
    }
  }

  /// convert.py's ranges (position p of m on device floor(p·n/m)) when they fit every allowance; otherwise
  /// consecutive ranges sized by `sharesOfLayer`: expert p goes to the device whose share holds the byte
  /// where p starts, moving on to the next device while p would cross the device's budget.
  static func contiguous(_ experts: [Expert], deviceCount n: Int, budgets: [Int?], allowances: [Int?]) -> [Int] {
    let m = experts.count
    let ranges = (0..<m).map { ($0 * n) / m }
    var bytes = [Int](repeating: 0, count: n)
    for (p, d) in ranges.enumerated() { bytes[d] += experts[p].byteCount }
    if zip(bytes, allowances).allSatisfy({ needed, allowance in allowance.map { needed <= $0 } ?? true }) { return ranges }
    let total = experts.reduce(0) { $0 + $1.byteCount }
    var ends: [Double] = []
    var sum = 0.0
    for share in sharesOfLayer(byteCount: total, allowances: allowances) {
      sum += share
      ends.append(sum)
    }
    var result = [Int](repeating: 0, count: m)
    var used = [Int](repeating: 0, count: n)
    var device = 0
    var start = 0
    for (p, expert) in experts.enumerated() {
      while device < n - 1
        && (Double(start) >= ends[device] || budgets[device].map { used[device] + expert.byteCount > $0 } ?? false)
      {
        device += 1
      }
      result[p] = device
      used[device] += expert.byteCount
      start += expert.byteCount
    }
    return result
  }

  /// How many of a layer's `byteCount` expert bytes each device should take: equal shares, except that a
  /// device whose allowance is smaller gets its allowance and the others share the rest equally (water
  /// filling). When the allowances cannot hold the layer, shares in proportion to them.
  public static func sharesOfLayer(byteCount: Int, allowances: [Int?]) -> [Double] {
    var shares = [Double](repeating: 0, count: allowances.count)
    var open = Array(allowances.indices)
    var left = Double(byteCount)
    while !open.isEmpty {
      let level = left / Double(open.count)
      let capped = open.filter { d in allowances[d].map { Double(max(0, $0)) < level } ?? false }
      if capped.isEmpty {
        for d in open { shares[d] = level }
        return shares
      }
      for d in capped {
        shares[d] = Double(max(0, allowances[d] ?? 0))
        left -= shares[d]
      }
      open.removeAll { capped.contains($0) }
    }
    // Every device is capped below the layer: proportional to the allowances (or equal when all are 0).
    let sum = shares.reduce(0, +)
    return sum > 0 ? shares.map { $0 * Double(byteCount) / sum } : shares.map { _ in Double(byteCount) / Double(shares.count) }
  }

  /// Largest first onto the device with the fewest expert bytes in this layer (relative to its budget when
  /// every device has one; ties: fewer experts, then lower device), among the devices it still fits.
  static func balanced(_ experts: [Expert], deviceCount n: Int, budgets: [Int?]) -> [Int] {
    let relative = budgets.allSatisfy { $0 != nil }
    var bytes = [Int](repeating: 0, count: n)
    var counts = [Int](repeating: 0, count: n)
    var result = [Int](repeating: 0, count: experts.count)
    func room(_ d: Int) -> Int { budgets[d].map { $0 - bytes[d] } ?? .max }
    func fill(_ d: Int) -> Double { relative ? Double(bytes[d]) / Double(max(1, budgets[d] ?? 1)) : Double(bytes[d]) }
    let order = experts.indices.sorted {
      experts[$0].byteCount != experts[$1].byteCount ? experts[$0].byteCount > experts[$1].byteCount : $0 < $1
    }
    for position in order {
      let size = experts[position].byteCount
      let fitting = (0..<n).filter { room($0) >= size }
      let best: Int
      if fitting.isEmpty {
        best = (0..<n).max { room($0) < room($1) } ?? 0
      } else {
        best = fitting.min { a, b in fill(a) != fill(b) ? fill(a) < fill(b) : counts[a] != counts[b] ? counts[a] < counts[b] : a < b }!
      }
      bytes[best] += size
      counts[best] += 1
      result[position] = best
    }
    return result
  }

  /// By load, heaviest (per replica) first onto the least-loaded device that does not hold it yet.
  static func byLoad(_ experts: [Expert], deviceCount: Int, redundantCount: Int, layer: Int) throws(ShardingError) -> [[Int]] {
    let m = experts.count
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

  /// A placement of items (experts of any layers) that fits `budgets`, or `nil` when none was found:
  /// largest first onto the allowed device with the most room; when that leaves an item without room, an
  /// exhaustive depth-first search over the same order, stopped after `searchLimit` steps.
  ///
  /// - Parameters:
  ///   - sizes: bytes per item.
  ///   - allowed: per item, the devices it may go to (indices into `budgets`).
  ///   - budgets: per device, its room in bytes (`nil`: unlimited).
  /// - Returns: per item, its device.
  public static func fit(sizes: [Int], allowed: [[Int]], budgets: [Int?], searchLimit: Int = 1_000_000) -> [Int]? {
    let order = sizes.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }
    let start = budgets.map { $0.map { max(0, $0) } ?? .max }
    var room = start
    var result = [Int](repeating: -1, count: sizes.count)
    var greedy = true
    for item in order {
      guard let best = allowed[item].min(by: { room[$0] != room[$1] ? room[$0] > room[$1] : $0 < $1 }), room[best] >= sizes[item] else {
        greedy = false
        break
      }
      room[best] -= sizes[item]
      result[item] = best
    }
    if greedy { return result }

    room = start
    func candidates(_ item: Int) -> [Int] {
      allowed[item].filter { room[$0] >= sizes[item] }.sorted { room[$0] != room[$1] ? room[$0] > room[$1] : $0 < $1 }
    }
    var options = [[Int]](repeating: [], count: order.count)
    var choice = [Int](repeating: -1, count: order.count)
    options[0] = candidates(order[0])
    var depth = 0
    var steps = 0
    while depth >= 0 && depth < order.count {
      steps += 1
      if steps > searchLimit { return nil }
      let item = order[depth]
      if choice[depth] >= 0 { room[options[depth][choice[depth]]] += sizes[item] }
      choice[depth] += 1
      guard choice[depth] < options[depth].count else {
        choice[depth] = -1
        depth -= 1
        continue
      }
      let device = options[depth][choice[depth]]
      room[device] -= sizes[item]
      result[item] = device
      depth += 1
      if depth < order.count {
        options[depth] = candidates(order[depth])
        choice[depth] = -1
      }
    }
    return depth == order.count ? result : nil
  }
}
