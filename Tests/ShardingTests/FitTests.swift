import Checkpoint
import JSON
import Sharding
import Testing

/// Placement under heterogeneous budgets: capacity-aware contiguous, fit-aware balanced, `--reserve`,
/// suggestions of a strategy that fits, per-device load sums.
@Suite("placement that fits the devices' budgets")
struct FitTests {
  /// One MoE layer per entry of `layers`, each expert's three projections `bytes / 3` each, plus a 32-byte
  /// norm per layer (replicated on every device).
  static func source(_ layers: [[Int]]) -> ShardSource {
    Fixtures.syntheticSource(layers: layers.count, experts: layers[0].count) { layer, expert in layers[layer][expert] / 3 }
  }

  static func devices(_ capacities: [Int?]) -> [ShardDevice] {
    capacities.enumerated().map { ShardDevice(name: "gpu\($0.offset)", capacityByteCount: $0.element) }
  }

  @Test("contiguous keeps convert.py's ranges when every device has room for them")
  func contiguousKeepsConvertRanges() throws {
    let source = Self.source([[192] + Array(repeating: 192, count: 7), Array(repeating: 192, count: 8)])
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([1_000_000, 1_000_000])))
    #expect(plan.fits)
    for layer in plan.moeLayers { #expect(layer.deviceExperts == [Array(0..<4), Array(4..<8)]) }
  }

  @Test("contiguous fills a small device only up to its budget, in device order, instead of overflowing it")
  func contiguousFillsByBudget() throws {
    // 2 layers x 8 experts x 192 B; gpu0 has room for 2 experts beside its 64 B of norms, gpu1 for all.
    let source = Self.source(Array(repeating: Array(repeating: 192, count: 8), count: 2))
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([64 + 2 * 192, 10_000])))
    #expect(plan.fits, "\(PlanReport.deviceTable(plan))")
    #expect(plan.devices[0].expertByteCount == 2 * 192)
    for layer in plan.moeLayers {
      // Still contiguous ranges in device order: gpu0 the lowest experts, gpu1 the rest.
      let k = layer.deviceExperts[0].count
      #expect(layer.deviceExperts == [Array(0..<k), Array(k..<8)])
    }
    // Without capacities the same checkpoint keeps convert.py's equal ranges.
    let unlimited = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([nil, nil])))
    #expect(unlimited.moeLayers.allSatisfy { $0.deviceExperts.map(\.count) == [4, 4] })
  }

  @Test("contiguous spreads a tight budget over the layers so that every device fits")
  func contiguousTightAcrossLayers() throws {
    // 3 layers x 5 experts x 30 B = 450 B, two devices with 240 B each for experts (+ 96 B of norms):
    // convert.py's ranges give gpu0 3 experts in every layer (270 B).
    let source = Self.source(Array(repeating: Array(repeating: 30, count: 5), count: 3))
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([96 + 240, 96 + 240])))
    #expect(plan.fits, "\(PlanReport.deviceTable(plan))")
    for layer in plan.moeLayers {
      let k = layer.deviceExperts[0].count
      #expect(layer.deviceExperts == [Array(0..<k), Array(k..<5)])
    }
  }

  @Test("balanced finds the fitting plan that largest-first onto the emptiest device misses")
  func balancedFindsAFit() throws {
    // 300+300 on one device and 204+198+198 on the other is the only fit of 600 B each; largest-first
    // onto the emptiest device puts 300+204 | 300+198 and then has no room for the last 198.
    let source = Self.source([[300, 300, 204, 198, 198]])
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([632, 632]), strategy: .balanced))
    #expect(plan.fits, "\(PlanReport.deviceTable(plan))")
    #expect(plan.devices.map(\.expertByteCount) == [600, 600])
  }

  @Test("balanced keeps a device with a capacity within it when the other device is unlimited")
  func balancedWithUnlimitedDevice() throws {
    // 8 experts of 192 B: an even split puts 768 B on gpu0, which has room for 2.
    let source = Self.source([Array(repeating: 192, count: 8)])
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([32 + 2 * 192, nil]), strategy: .balanced))
    #expect(plan.fits, "\(PlanReport.deviceTable(plan))")
    #expect(plan.moeLayers[0].deviceExperts.map(\.count) == [2, 6])
  }

  @Test("the fit search places items that no greedy order fits, and says when nothing fits")
  func fitSearch() {
    let sizes = [300, 300, 204, 198, 198]
    let allowed = Array(repeating: [0, 1], count: 5)
    let fit = ExpertPlacement.fit(sizes: sizes, allowed: allowed, budgets: [600, 600]) ?? []
    var perDevice = [0, 0]
    for (size, device) in zip(sizes, fit) { perDevice[device] += size }
    #expect(fit.count == 5)
    #expect(perDevice == [600, 600])
    #expect(ExpertPlacement.fit(sizes: sizes, allowed: allowed, budgets: [599, 600]) == nil)
    // An item only one device may take goes there.
    #expect(ExpertPlacement.fit(sizes: [10, 10], allowed: [[1], [0, 1]], budgets: [10, 10]) == [1, 0])
  }

  @Test("--reserve is kept free on every device, whatever the strategy")
  func reserveEveryStrategy() throws {
    let source = Self.source([Array(repeating: 192, count: 8)])
    let load = ExpertLoad(counts: [0: [1, 2, 3, 4, 5, 6, 7, 8]])
    for strategy in ExpertStrategy.allCases {
      // 8 x 192 B of experts and 32 B of norms per device fill 2 x 800 B exactly.
      var options = ShardOptions(devices: Self.devices([800, 800]), expertLoad: strategy == .load ? load : nil)
      options.strategy = strategy
      #expect(try ShardPlanner.plan(source, options: options).fits, "\(strategy)")
      options.reserveByteCount = 1
      let plan = try ShardPlanner.plan(source, options: options)
      #expect(!plan.fits, "\(strategy)")
      #expect(plan.devices.map(\.budgetByteCount) == [799, 799])
      #expect(PlanReport.deviceTable(plan).contains("budget"))
    }
    // With room for it, contiguous moves experts off the device the reserve shrinks.
    var options = ShardOptions(devices: Self.devices([832, 10_000]), reserveByteCount: 400)
    let plan = try ShardPlanner.plan(source, options: options)
    #expect(plan.fits && plan.moeLayers[0].deviceExperts.map(\.count) == [2, 6])
    options.reserveByteCount = 0
    #expect(try ShardPlanner.plan(source, options: options).moeLayers[0].deviceExperts.map(\.count) == [4, 4])
  }

  @Test("a strategy that cannot fit names the one that can, with its per-device figures")
  func suggestsFittingStrategy() throws {
    // No contiguous cut of 300, 204, 300, 198, 198 gives 600 | 600; balanced does.
    let source = Self.source([[300, 204, 300, 198, 198]])
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([632, 632])))
    #expect(!plan.fits)
    let alternatives = ShardPlanner.alternatives(to: plan)
    #expect(alternatives.filter(\.plan.fits).map(\.strategy) == [.balanced])
    #expect {
      try plan.checkCapacities()
    } throws: { error in
      "\(error)".contains("--strategy balanced fits: gpu0 632 B of 632 B, gpu1 632 B of 632 B")
    }
    #expect(PlanReport.summary(plan).contains("--strategy balanced fits"))
    let document = ShardManifest.dryRunDocument(plan, weightFiles: plan.files.map { .init(relativePath: $0.relativePath, byteCount: 0, sha256: nil) })
    let listed = document["alternatives"]?.arrayValue ?? []
    #expect(listed.compactMap { $0["fits"]?.boolValue == true ? $0["strategy"]?.stringValue : nil } == ["balanced"])
    // When nothing fits, the message says so.
    let tight = try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([400, 400])))
    #expect(PlanReport.suggestions(ShardPlanner.alternatives(to: tight)).first?.hasPrefix("no other strategy fits either") == true)
  }

  @Test("with an expert-load file the plan shows each device's summed load, in the table and the JSON")
  func loadSums() throws {
    let source = Self.source(Array(repeating: Array(repeating: 192, count: 4), count: 2))
    let load = ExpertLoad(counts: [1: [10, 20, 30, 40]])
    var options = ShardOptions(devices: Self.devices([nil, nil]), expertLoad: load)
    let byLoad = try ShardPlanner.plan(source, options: options)
    // Load placement: 40 and 10 on one device, 30 and 20 on the other.
    #expect(byLoad.devices.map(\.expertLoad) == [50, 50])
    options.strategy = .contiguous
    let contiguous = try ShardPlanner.plan(source, options: options)
    #expect(contiguous.devices.map(\.expertLoad) == [30, 70])
    let table = PlanReport.deviceTable(contiguous)
    #expect(table.contains("expert load") && table.contains("30 (30.0%)") && table.contains("70 (70.0%)") && table.contains("100 (100.0%)"))
    let document = ShardManifest.document(contiguous, weightFiles: contiguous.files.map { .init(relativePath: $0.relativePath, byteCount: 0, sha256: nil) })
    #expect(document["devices"]?.arrayValue?.map { $0["expert_load"]?.doubleValue } == [30, 70])
    // Without a file there is no load column.
    #expect(!PlanReport.deviceTable(try ShardPlanner.plan(source, options: ShardOptions(devices: Self.devices([nil, nil])))).contains("expert load"))
  }
}
