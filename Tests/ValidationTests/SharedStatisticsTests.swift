import Checkpoint
import Pipeline
import SystemIO
import Testing
import WeightSources
@testable import Validation

@Suite("convert and validate share one error statistic")
struct SharedStatisticsTests {
  @Test("validate --level tensor reports the SNR and max error convert reported for the same pair",
        arguments: ["fp8-block", "fp8-channel", "nvfp4-ct", "int4-g128", "f16"])
  func sameFigures(_ targetName: String) throws {
    let slice = try Fixtures.layerSlice.get()
    let output = try Fixtures.temporaryDirectory("stats-\(targetName)")
    let checkpoint = try Checkpoint.open(slice)
    let target = try Fixtures.require(ConversionTarget.parse(targetName == "int4-g128" ? "int4-g64" : targetName), targetName)
    let plan = try ConversionPlan(checkpoint: checkpoint, target: target)
    let report = try ConversionRunner(plan: plan, checkpoint: checkpoint, output: output).run(resume: false, commandLine: ["test"]) { _ in }
    let validation = try Validator(
      reference: try CheckpointWeightProvider(path: slice), candidate: try CheckpointWeightProvider(path: output),
      options: ValidationOptions(levels: [.tensor])
    ).run()
    var compared = 0
    for converted in report.tensors {
      let tensor = try #require(validation.tensors.first { $0.name == converted.name }, "\(converted.name)")
      let snr = try #require(tensor.metrics.snrDecibels)
      if snr.isInfinite {
        #expect(converted.snrDecibels == snr, "\(targetName) \(converted.name)")
      } else {
        #expect(abs(snr - converted.snrDecibels) <= 1e-9 * abs(snr), "\(targetName) \(converted.name): \(snr) vs \(converted.snrDecibels)")
      }
      #expect(tensor.metrics.maxAbsoluteError == converted.maxAbsoluteError, "\(targetName) \(converted.name)")
      compared += 1
    }
    #expect(compared > 5)
  }
}
