import Checkpoint
@testable import Sharding
import Testing

@Suite("shard planner")
struct PlannerTests {
  @Test("every routed expert is on exactly one device, for 2, 4 and 16 devices")
  func everyExpertOnce() throws {
    let source = try Fixtures.source(Fixtures.fp8Sample)
    for count in [2, 4, 16] {
      let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: count)))
      #expect(plan.moeLayers.map(\.layer) == [1, 2, 3, 4])
      for layer in plan.moeLayers {
        #expect(layer.experts == Array(0..<16))
        #expect(layer.slots.allSatisfy { $0.count == 1 })
        #expect(layer.deviceExperts.map(\.count) == Array(repeating: 16 / count, count: count))
        // Contiguous: device r holds [r*16/n, (r+1)*16/n).
        for (r, experts) in layer.deviceExperts.enumerated() {
          #expect(experts == Array((r * 16 / count)..<((r + 1) * 16 / count)))
        }
      }
      // Each expert tensor appears on exactly one device.
      var seen: [String: Int] = [:]
      for device in plan.devices { for tensor in device.tensors where tensor.name.contains(".experts.") { seen[tensor.name, default: 0] += 1 } }
      #expect(seen.count == source.tensors.filter { $0.name.contains(".experts.") }.count)
      #expect(seen.values.allSatisfy { $0 == 1 })
    }
  }

  @Test("the union of the devices' tensors is the input, non-expert tensors replicated")
  func unionIsInput() throws {
    let source = try Fixtures.source(Fixtures.fp8Sample)
    let plan = try ShardPlanner.plan(source, options: ShardOptions(devices: try ShardDevice.homogeneous(count: 4)))
    var copies: [String: Int] = [:]
    for device in plan.devices {
      for tensor in device.tensors {
        #expect(tensor.slice == nil)
        #expect(source.tensors[tensor.sourceIndex].name == tensor.name)
        copies[tensor.name, default: 0] += 1
      }
    }
    #expect(Set(copies.keys) == Set(source.tensors.map(\.name)))
    for tensor in source.tensors {
      #expect(copies[tensor.name] == (TensorName(tensor.name).isRoutedExpert ? 1 : 4), "\(tensor.name)")
    }
  }

  @Test("quantization companions always land with their weight")
  func companionsTogether() throws {
    let source = try Fixtures.source(Fixtures.fp8Sample)
    // A rule that only names the scales must still move the weights with them.
    let options = ShardOptions(
      devices: [ShardDevice(name: "gpu"), ShardDevice(name: "cpu")],
      rules: [try PlacementRule(parsing: "*.experts.*.weight_scale_inv=cpu")])
    let plan = try ShardPlanner.plan(source, options: options)
    for device in plan.devices {
      let names = Set(device.tensors.map(\.name))
      for name in names where name.hasSuffix(".weight_scale_inv") {
        #expect(names.contains(String(name.dropLast("_scale_inv".count))), "\(name) without its weight on \(device.device.name)")
      }
      for name in names where name.hasSuffix(".weight") && source.tensors.contains(where: { $0.name == name + "_scale_inv" }) {
        #expect(names.contains(name + "_scale_inv"), "\(name) without its scale on \(device.device.name)")
      }
    }
    let cpu = plan.devices[1].tensors.map(\.name)
    #expect(cpu.allSatisfy { $0.contains(".experts.") })
    #expect(plan.devices[0].tensors.allSatisfy { !$0.name.contains(".experts.") })
  }
}
