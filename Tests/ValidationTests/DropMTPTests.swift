import Checkpoint
import CommandLineSupport
import Foundation
import JSON
import SmeltCommands
import Testing

/// Issue 14: `--drop-mtp` on safetensors `convert` and on `shard`, as mlx-lm's and llama.cpp's converters do.
@Suite("--drop-mtp leaves out the MTP layer and declares none in config.json")
struct DropMTPTests {
  static func smelt(_ arguments: [String]) -> (status: Int32, stderr: String) {
    let stdout = TextOutput.capture(), stderr = TextOutput.capture()
    let status = SmeltCommands.run(arguments: arguments + ["-q"], stdout: stdout, stderr: stderr)
    return (status, stderr.text)
  }

  /// The checkpoint in `directory` has no tensor of layer >= 4 (the sample's MTP layer) and its config
  /// declares no MTP layer.
  static func expectNoMTP(_ directory: String) throws {
    let checkpoint = try Checkpoint.open(directory)
    let mtp = checkpoint.tensorNames.filter { (TensorName($0).layer ?? 0) >= 4 }
    #expect(mtp.isEmpty, "\(mtp.prefix(3))")
    #expect(checkpoint.tensorNames.contains { $0.hasPrefix("model.layers.3.") })
    #expect(checkpoint.config?.raw["num_nextn_predict_layers"]?.intValue == 0)
  }

  @Test("convert --to bf16 and --to mxfp4 --drop-mtp: no layer-4 tensor, num_nextn_predict_layers 0, verify clean")
  func convertDropsMTP() throws {
    for target in ["bf16", "mxfp4"] {
      let output = try Fixtures.temporaryDirectory("drop-mtp-\(target)")
      let run = Self.smelt(["convert", Fixtures.bf16Sample, output, "--to", target, "--drop-mtp", "--force"])
      #expect(run.status == 0, "\(run.stderr)")
      try Self.expectNoMTP(output)
      #expect(Verification.verify(directory: output, deep: false).isClean)
    }
  }

  @Test("shard --drop-mtp: no device holds a layer-4 tensor, each device's config declares none")
  func shardDropsMTP() throws {
    let output = try Fixtures.temporaryDirectory("drop-mtp-shard") + "/out"
    let run = Self.smelt(["shard", Fixtures.bf16Sample, output, "--devices", "2", "--drop-mtp"])
    #expect(run.status == 0, "\(run.stderr)")
    for device in ["0", "1"] { try Self.expectNoMTP(output + "/" + device) }
    #expect(Verification.verify(directory: output, deep: false).isClean)
  }
}
