import Checkpoint
import Sharding
import Testing

@Suite("expert placement strategies and option parsing")
struct PlacementTests {
  @Test("contiguous, round-robin and balanced placements")
  func strategies() throws {
    let experts = (0..<8).map { ExpertPlacement.Expert(index: $0, byteCount: 10) }
    #expect(try ExpertPlacement.place(experts, deviceCount: 4, strategy: .contiguous).map(\.[0]) == [0, 0, 1, 1, 2, 2, 3, 3])
    #expect(try ExpertPlacement.place(experts, deviceCount: 4, strategy: .roundRobin).map(\.[0]) == [0, 1, 2, 3, 0, 1, 2, 3])
    // Uneven sizes: the big expert gets a device to itself.
    let uneven = [40, 10, 10, 10, 10].enumerated().map { ExpertPlacement.Expert(index: $0.offset, byteCount: $0.element) }
    #expect(try ExpertPlacement.place(uneven, deviceCount: 2, strategy: .balanced).map(\.[0]) == [0, 1, 1, 1, 1])
    // Capacity-relative: a device with 3x the capacity takes 3x the bytes.
    let equal = (0..<8).map { ExpertPlacement.Expert(index: $0, byteCount: 10) }
    let placed = try ExpertPlacement.place(equal, deviceCount: 2, strategy: .balanced, budgets: [300, 100])
    #expect(placed.filter { $0 == [0] }.count == 6)
  }

  @Test("load-based placement with redundant replicas of the hottest experts")
  func loadAndReplicas() throws {
    let loads: [Double] = [100, 1, 1, 1, 50, 1, 1, 1]
    let experts = loads.enumerated().map { ExpertPlacement.Expert(index: $0.offset, byteCount: 10, load: $0.element) }
    let plain = try ExpertPlacement.place(experts, deviceCount: 2, strategy: .load)
    #expect(plain[0] != plain[4])  // the two hot experts are separated
    let replicated = try ExpertPlacement.place(experts, deviceCount: 4, strategy: .load, redundantCount: 2)
    #expect(replicated[0].count == 3)  // 100/2 = 50 ties 50, expert 0 wins again by lower index → 3 copies
    #expect(replicated.reduce(0) { $0 + $1.count } == 10)
    for devices in replicated { #expect(Set(devices).count == devices.count) }
    #expect(throws: ShardingError.self) { try ExpertPlacement.place(experts, deviceCount: 2, strategy: .load, redundantCount: 9) }
  }

  @Test("the planner records replicas and local indices from an expert-load file")
  func plannerWithLoad() throws {
    let source = Fixtures.syntheticSource(layers: 2, experts: 8)
    let load = try ExpertLoad(json: Array(#"{"layers": {"1": [9, 1, 1, 1, 1, 1, 1, 8]}}"#.utf8), path: "load.json")
    let options = ShardOptions(devices: try ShardDevice.homogeneous(count: 4), expertLoad: load, redundantExpertCount: 2)
    let plan = try ShardPlanner.plan(source, options: options)
    let layer1 = try #require(plan.moeLayers.first { $0.layer == 1 })
    #expect(layer1.slots[0].count == 2 && layer1.slots[7].count == 2)
    #expect(layer1.deviceExperts.reduce(0) { $0 + $1.count } == 10)
    for (e, slots) in zip(layer1.experts, layer1.slots) {
      for slot in slots { #expect(layer1.deviceExperts[slot.device][slot.localIndex] == e) }
    }
    // Without a load file, --redundant is refused.
    #expect(throws: ShardingError.self) {
      try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 4), redundantExpertCount: 1))
    }
    // A load file with the wrong expert count is refused.
    let wrong = try ExpertLoad(json: Array(#"{"1": [1, 2]}"#.utf8), path: "load.json")
    #expect(throws: ShardingError.self) {
      try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 4), expertLoad: wrong))
    }
  }

  @Test("devices, byte sizes and placement rules parse; bad ones are refused")
  func parsing() throws {
    #expect(try ByteSize.parse("80GB") == 80_000_000_000)
    #expect(try ByteSize.parse("512GiB") == 512 << 30)
    #expect(try ByteSize.parse("1.5TB") == 1_500_000_000_000)
    #expect(try ByteSize.parse("4096") == 4096)
    for bad in ["", "GB", "-1GB", "12XB", "1e9"] { #expect(throws: ShardingError.self, "\(bad)") { try ByteSize.parse(bad) } }
    let device = try ShardDevice(parsing: "gpu0:80GB")
    #expect(device.name == "gpu0" && device.capacityByteCount == 80_000_000_000)
    #expect(try ShardDevice(parsing: "cpu").capacityByteCount == nil)
    for bad in ["", "../x:1GB", "a/b", "gpu:lots"] { #expect(throws: ShardingError.self, "\(bad)") { try ShardDevice(parsing: bad) } }
    let rule = try PlacementRule(parsing: "*.experts.*=cpu,gpu1")
    #expect(rule.deviceNames == ["cpu", "gpu1"] && rule.glob.matches("model.layers.3.mlp.experts.0.up_proj.weight"))
    for bad in ["*.experts.*", "=cpu", "*.x="] { #expect(throws: ShardingError.self, "\(bad)") { try PlacementRule(parsing: bad) } }
    // A rule naming an undeclared device is refused by the planner.
    let source = Fixtures.syntheticSource(layers: 1, experts: 2)
    #expect(throws: ShardingError.self) {
      try ShardPlanner.plan(source, options: ShardOptions(devices: [ShardDevice(name: "gpu0")], rules: [try PlacementRule(parsing: "*=cpu")]))
    }
  }

  @Test("rules send matched experts to their devices and the rest to the free devices")
  func rulesAndFreeDevices() throws {
    let source = Fixtures.syntheticSource(layers: 2, experts: 4)
    let options = ShardOptions(
      devices: [ShardDevice(name: "gpu0"), ShardDevice(name: "gpu1"), ShardDevice(name: "cpu")],
      rules: [try PlacementRule(parsing: "model.layers.1.mlp.experts.*=cpu")])
    let plan = try ShardPlanner.plan(source, options: options)
    #expect(plan.moeLayers[1].deviceExperts.map(\.count) == [0, 0, 4])
    #expect(plan.moeLayers[0].deviceExperts.map(\.count) == [2, 2, 0])
    // Norms (unmatched, non-expert) are replicated on the free devices only.
    let norm = "model.layers.0.input_layernorm.weight"
    #expect(plan.devices.map { $0.tensors.contains { $0.name == norm } } == [true, true, false])
    #expect(PlanReport.summary(plan).contains("cpu: 4 expert(s): 0-3"))
  }
}
