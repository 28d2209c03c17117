/// Splits a job's work into parts of similar cost, measured in bytes of work (what a part reads and writes),
/// never in file counts: one expert-heavy output file can be four times another.
///
/// Work comes as *units* (a tensor group, a weight comparison) in output order, grouped into *files*: the
/// units of one file are consecutive. Two ways to split, both deterministic functions of the costs and the
/// part count alone, so that every part computes the same assignment on its own:
///
/// - **whole files** — largest file first onto the part with the least work (ties: the lower part). Every
///   file is written by one part, start to end, under its final name. Used when it is within `tolerance`
///   of the best any split could do.
/// - **cut files** — the units in order, cut into N runs at the unit boundaries nearest to `k·W/N` (at a
///   file boundary instead when one is that close). A file that spans a cut is *shared*: each part writes
///   its units' byte ranges into it (see `PartOutputs.sharedTemporaryPath`) and `--finalize` renames it.
///   This is how a job with fewer output files than parts (one GGUF file, a small checkpoint) still keeps
///   every part busy.
public enum PartBalancer {
  /// How far above the ideal largest part (`max(W/N, largest unit)`) whole files may go before files are cut.
  public static let defaultTolerance = 0.10

  /// The 0-based part of every file, whole files only (largest first onto the least-loaded part).
  public static func assignWholeFiles(costs: [Int], partCount: Int) -> [Int] {
    let order = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
    var load = [Int](repeating: 0, count: max(1, partCount))
    var result = [Int](repeating: 0, count: costs.count)
    for file in order {
      var best = 0
      for part in 1..<load.count where load[part] < load[best] { best = part }
      load[best] += costs[file]
      result[file] = best
    }
    return result
  }

  /// The 0-based part of every unit.
  ///
  /// - Parameters:
  ///   - unitCosts: bytes of work per unit, in output order.
  ///   - fileOfUnit: the file each unit belongs to (non-decreasing: a file's units are consecutive).
  ///   - allowCuttingFiles: `false` for jobs whose files cannot be shared (then whole files always).
  public static func assign(
    unitCosts: [Int], fileOfUnit: [Int], partCount: Int, allowCuttingFiles: Bool = true,
    tolerance: Double = defaultTolerance
  ) -> [Int] {
    precondition(unitCosts.count == fileOfUnit.count, "one file per unit")
    guard partCount > 1, !unitCosts.isEmpty else { return [Int](repeating: 0, count: unitCosts.count) }
    let fileCount = (fileOfUnit.max() ?? -1) + 1
    var fileCosts = [Int](repeating: 0, count: fileCount)
    for (unit, file) in fileOfUnit.enumerated() { fileCosts[file] += unitCosts[unit] }
    let wholeFiles = assignWholeFiles(costs: fileCosts, partCount: partCount)
    let byWholeFiles = fileOfUnit.map { wholeFiles[$0] }
    guard allowCuttingFiles else { return byWholeFiles }
    let total = unitCosts.reduce(0, +)
    let bound = max(Double(total) / Double(partCount), Double(unitCosts.max() ?? 0))
    if Double(largestLoad(byWholeFiles, unitCosts, partCount)) <= bound * (1 + tolerance) { return byWholeFiles }
    return cutInOrder(unitCosts: unitCosts, fileOfUnit: fileOfUnit, partCount: partCount, tolerance: tolerance)
  }

  /// The heaviest part's work under `assignment`.
  public static func largestLoad(_ assignment: [Int], _ unitCosts: [Int], _ partCount: Int) -> Int {
    var load = [Int](repeating: 0, count: max(1, partCount))
    for (unit, part) in assignment.enumerated() { load[part] += unitCosts[unit] }
    return load.max() ?? 0
  }

  /// Consecutive runs of units, cut near `k·W/N`.
  static func cutInOrder(unitCosts: [Int], fileOfUnit: [Int], partCount: Int, tolerance: Double) -> [Int] {
    // prefix[b]: the work before boundary b (a cut at b gives units < b to the earlier part).
    var prefix = [0]
    for cost in unitCosts { prefix.append(prefix[prefix.count - 1] + cost) }
    let fileBoundaries = prefix.indices.filter { b in
      b == 0 || b == unitCosts.count || fileOfUnit[b - 1] != fileOfUnit[b]
    }
    let share = Double(prefix[prefix.count - 1]) / Double(partCount)
    var cuts: [Int] = []
    var previous = 0
    for k in 1..<partCount {
      let target = share * Double(k)
      let distance = { (boundary: Int) in abs(Double(prefix[boundary]) - target) }
      var best = max(previous, nearest(target, among: prefix.indices, by: { prefix[$0] }))
      // The nearest file boundary when it is almost as good: fewer shared files.
      let file = fileBoundaries[nearest(target, among: fileBoundaries.indices, by: { prefix[fileBoundaries[$0]] })]
      if file >= previous, distance(file) <= share * tolerance { best = file }
      cuts.append(best)
      previous = best
    }
    var result = [Int](repeating: 0, count: unitCosts.count)
    var part = 0
    for unit in unitCosts.indices {
      while part < cuts.count && unit >= cuts[part] { part += 1 }
      result[unit] = part
    }
    return result
  }

  /// The position in `positions` whose non-decreasing `value` is nearest `target` (the lower on a tie).
  static func nearest(_ target: Double, among positions: Range<Int>, by value: (Int) -> Int) -> Int {
    var low = positions.lowerBound
    var high = positions.upperBound - 1
    while low < high {
      let mid = (low + high) / 2
      if Double(value(mid)) < target { low = mid + 1 } else { high = mid }
    }
    if low > positions.lowerBound, abs(Double(value(low - 1)) - target) <= abs(Double(value(low)) - target) {
      return low - 1
    }
    return low
  }
}
