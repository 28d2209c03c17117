import Checkpoint
import TensorCore

/// Human-readable renderings of a plan: the per-device table and the `--dry-run` summary.
public enum PlanReport {
  /// The per-device table: tensors, experts per layer, bytes needed vs capacity.
  public static func deviceTable(_ plan: ShardPlan) -> String {
    var rows: [[String]] = [["device", "tensors", "experts/layer", "expert bytes", "other bytes", "needed", "capacity", "files", "fits"]]
    for (d, device) in plan.devices.enumerated() {
      let counts = Set(plan.moeLayers.map { $0.deviceExperts[d].count })
      let expertsPerLayer = counts.isEmpty ? "-" : counts.count == 1 ? "\(counts.first!)" : "\(counts.min()!)-\(counts.max()!)"
      let capacity = device.device.capacityByteCount.map(ByteCount.formatted) ?? "unlimited"
      let status: String
      if let limit = device.device.capacityByteCount, device.tensorByteCount > limit {
        status = "NO, over by \(ByteCount.formatted(device.tensorByteCount - limit))"
      } else {
        status = "yes"
      }
      rows.append([
        device.device.name, grouped(device.tensors.count), expertsPerLayer, ByteCount.formatted(device.expertByteCount),
        ByteCount.formatted(device.tensorByteCount - device.expertByteCount), ByteCount.formatted(device.tensorByteCount),
        capacity, "\(device.fileIndices.count)", status,
      ])
    }
    let total = plan.devices.reduce(0) { $0 + $1.tensorByteCount }
    rows.append(["total", grouped(plan.devices.reduce(0) { $0 + $1.tensors.count }), "", ByteCount.formatted(plan.devices.reduce(0) { $0 + $1.expertByteCount }), "", ByteCount.formatted(total), "", "\(plan.files.count)", ""])
    return table(rows)
  }

  /// The `--dry-run` text: what is sharded how, the device table and the expert placement.
  public static func summary(_ plan: ShardPlan) -> String {
    let source = plan.source
    let options = plan.options
    var lines: [String] = []
    var how = ["layout \(options.layout.rawValue)", "\(plan.devices.count) device(s)"]
    if !plan.moeLayers.isEmpty { how.append("strategy \(options.layout == .deepSeekMP ? ExpertStrategy.contiguous.rawValue : options.strategy.rawValue)") }
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
    lines.append(plan.fits ? "the plan fits every device" : "the plan does NOT fit: see the 'fits' column")
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
