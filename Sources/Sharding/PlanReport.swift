import Checkpoint
import TensorCore

/// Human-readable renderings of a plan: the per-device table and the `--dry-run` summary.
public enum PlanReport {
  /// The per-device table: tensors, experts per layer, bytes needed vs budget (capacity less `--reserve`),
  /// and with `--expert-load` each device's summed expert load.
  public static func deviceTable(_ plan: ShardPlan) -> String {
    let reserving = plan.options.reserveByteCount > 0
    let loads = plan.devices.compactMap(\.expertLoad)
    let totalLoad = loads.reduce(0, +)
    var header = ["device", "tensors", "experts/layer", "expert bytes", "other bytes", "needed", "capacity"]
    if reserving { header.append("budget") }
    if !loads.isEmpty { header.append("expert load") }
    var rows: [[String]] = [header + ["files", "fits"]]
    for (d, device) in plan.devices.enumerated() {
      let counts = Set(plan.moeLayers.map { $0.deviceExperts[d].count })
      let expertsPerLayer = counts.isEmpty ? "-" : counts.count == 1 ? "\(counts.first!)" : "\(counts.min()!)-\(counts.max()!)"
      var row = [
        device.device.name, grouped(device.tensors.count), expertsPerLayer, ByteCount.formatted(device.expertByteCount),
        ByteCount.formatted(device.tensorByteCount - device.expertByteCount), ByteCount.formatted(device.tensorByteCount),
        device.device.capacityByteCount.map(ByteCount.formatted) ?? "unlimited",
      ]
      if reserving { row.append(device.budgetByteCount.map(ByteCount.formatted) ?? "unlimited") }
      if let load = device.expertLoad { row.append(loadText(load, of: totalLoad)) }
      let status: String
      if let budget = device.budgetByteCount, device.tensorByteCount > budget {
        status = "NO, over by \(ByteCount.formatted(device.tensorByteCount - budget))"
      } else {
        status = "yes"
      }
      rows.append(row + ["\(device.fileIndices.count)", status])
    }
    let total = plan.devices.reduce(0) { $0 + $1.tensorByteCount }
    var totals = [
      "total", grouped(plan.devices.reduce(0) { $0 + $1.tensors.count }), "", ByteCount.formatted(plan.devices.reduce(0) { $0 + $1.expertByteCount }),
      "", ByteCount.formatted(total), "",
    ]
    if reserving { totals.append("") }
    if !loads.isEmpty { totals.append(loadText(totalLoad, of: totalLoad)) }
    rows.append(totals + ["\(plan.files.count)", ""])
    return table(rows)
  }

  /// `12,345 (25.0%)`: a load and its share of the total.
  static func loadText(_ load: Double, of total: Double) -> String {
    func tenths(_ value: Double) -> String {
      let scaled = Int((min(value, 1e15) * 10).rounded())
      return "\(grouped(scaled / 10)).\(scaled % 10)"
    }
    let whole = load.rounded()
    let value = abs(load - whole) < 0.05 ? grouped(Int(min(whole, 1e15))) : tenths(load)
    return "\(value) (\(tenths(total > 0 ? load / total * 100 : 0))%)"
  }

  /// For a plan that does not fit: a line per other strategy that fits, with each device's bytes against its
  /// budget; or, when none fits, a line saying so with the smallest overflow each leaves.
  public static func suggestions(_ alternatives: [StrategyAlternative]) -> [String] {
    guard !alternatives.isEmpty else { return [] }
    func flag(_ strategy: ExpertStrategy, _ plan: ShardPlan) -> String {
      strategy == .load || plan.options.expertLoad == nil ? "--strategy \(strategy.rawValue)" : "--strategy \(strategy.rawValue) (keeping --expert-load for the load sums)"
    }
    let fitting = alternatives.filter(\.plan.fits)
    guard !fitting.isEmpty else {
      let overflows = alternatives.map { alternative in
        let over = alternative.plan.devices.reduce(0) { sum, device in sum + max(0, device.tensorByteCount - (device.budgetByteCount ?? .max)) }
        return "\(alternative.strategy.rawValue) over by \(ByteCount.formatted(over))"
      }
      return ["no other strategy fits either (\(overflows.joined(separator: ", "))): add devices or capacity, lower --reserve, or move experts with --place"]
    }
    return fitting.map { alternative in
      let figures = alternative.plan.devices.map { device in
        "\(device.device.name) \(ByteCount.formatted(device.tensorByteCount))" + (device.budgetByteCount.map { " of \(ByteCount.formatted($0))" } ?? " (unlimited)")
      }
      return "\(flag(alternative.strategy, alternative.plan)) fits: \(figures.joined(separator: ", "))"
    }
  }

  /// The `--dry-run` text: what is sharded how, the device table and the expert placement.
  public static func summary(_ plan: ShardPlan) -> String {
    let source = plan.source
    let options = plan.options
    var lines: [String] = []
    var how = ["layout \(options.layout.rawValue)", "\(plan.devices.count) device(s)"]
    if !plan.moeLayers.isEmpty { how.append("strategy \(options.effectiveStrategy.rawValue)") }
    if options.reserveByteCount > 0 { how.append("reserve \(ByteCount.formatted(options.reserveByteCount)) per device") }
    if options.redundantExpertCount > 0 { how.append("\(options.redundantExpertCount) redundant expert(s) per layer") }
    if options.tensorParallel || options.layout == .deepSeekMP { how.append("tensor parallel") }
    for rule in options.rules where options.layout == .huggingFace { how.append("place \(rule.text)") }
    lines.append("shard plan for \(source.directory): " + how.joined(separator: ", "))
    let architecture = source.config?.architectures.first.map { "\($0), " } ?? ""
    lines.append("source: \(architecture)\(grouped(source.tensors.count)) tensors, \(ByteCount.formatted(source.tensorByteCount)) in \(source.fileNames.count) file(s)")
    if let first = plan.moeLayers.first, let last = plan.moeLayers.last {
      let counts = Set(plan.moeLayers.map(\.experts.count))
      let countText = counts.count == 1 ? "\(counts.first!)" : "\(counts.min()!)-\(counts.max()!)"
      lines.append("MoE: \(plan.moeLayers.count) layer(s) (\(first.layer)-\(last.layer)) x \(countText) routed experts")
    } else {
      lines.append("MoE: no routed experts found; every tensor is replicated or split")
    }
    if !plan.skippedTensors.isEmpty {
      lines.append("skipped: \(plan.skippedTensors.count) tensor(s) of the MTP layer (as DeepSeek's convert.py does)")
    }
    lines.append("")
    lines.append(deviceTable(plan))
    if !plan.moeLayers.isEmpty {
      lines.append("")
      var shown = 0
      var index = 0
      let layers = plan.moeLayers
      while index < layers.count {
        var end = index + 1
        while end < layers.count && layers[end].deviceExperts == layers[index].deviceExperts { end += 1 }
        if shown == 4 {
          lines.append("... \(layers.count - index) more layer(s) with other placements (--json lists all)")
          break
        }
        let range = end - index == 1 ? "layer \(layers[index].layer)" : "layers \(layers[index].layer)-\(layers[end - 1].layer)"
        lines.append("expert placement, \(range):")
        for (d, experts) in layers[index].deviceExperts.enumerated() where !experts.isEmpty {
          lines.append("  \(plan.devices[d].device.name): \(experts.count) expert(s): \(ranges(experts))")
        }
        shown += 1
        index = end
      }
    }
    lines.append("")
    if plan.fits {
      lines.append("the plan fits every device")
    } else {
      lines.append("the plan does NOT fit: see the 'fits' column")
      lines += suggestions(ShardPlanner.alternatives(to: plan))
    }
    return lines.joined(separator: "\n")
  }

  /// `0-31, 40, 42-43`.
  public static func ranges(_ values: [Int]) -> String {
    var parts: [String] = []
    var i = 0
    while i < values.count {
      var j = i
      while j + 1 < values.count && values[j + 1] == values[j] + 1 { j += 1 }
      parts.append(i == j ? "\(values[i])" : "\(values[i])-\(values[j])")
      i = j + 1
    }
    return parts.joined(separator: ", ")
  }

  static func grouped(_ n: Int) -> String {
    let digits = Array(String(n))
    var out: [Character] = []
    for (i, c) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
      out.append(c)
    }
    return String(out)
  }

  static func table(_ rows: [[String]]) -> String {
    let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.map { row in
      row.enumerated().map { column, cell in
        let pad = String(repeating: " ", count: widths[column] - cell.count)
        return column == 0 || column == row.count - 1 ? cell + pad : pad + cell
      }.joined(separator: "  ").trimmingTrailingSpaces()
    }.joined(separator: "\n")
  }
}

extension String {
  fileprivate func trimmingTrailingSpaces() -> String {
    var result = self
    while result.last == " " { result.removeLast() }
    return result
  }
}
