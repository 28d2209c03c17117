import CommandLineSupport
import Foundation
import ReferenceModel
import TensorCore
import SmeltCommands
import Testing
import WeightSources
@testable import Validation

@Suite("smelt forward")
struct ForwardCommandTests {
  @Test("writes F32 logits [batch, seq, vocab] and prints the top tokens per position")
  func writesLogits() throws {
    let output = try Fixtures.temporaryDirectory("forward") + "/logits.safetensors"
    let stdout = TextOutput.capture(), stderr = TextOutput.capture()
    let status = SmeltCommands.run(
      arguments: ["forward", Fixtures.bf16Sample, "--tokens", "1,2,3;4,5,6", "--output", output, "--top", "2", "-q"],
      stdout: stdout, stderr: stderr)
    #expect(status == 0, "\(stderr.text)")
    let lines = stdout.text.split(separator: "\n")
    #expect(lines.count == 7 && lines[0].contains("top 2 (id: logit)"))

    let file = try CheckpointWeightProvider(path: output)
    let logits = try file.weight("logits")
    #expect(logits.shape == [2, 3, 512])
    #expect(file.storedDType(of: "logits") == .float32)
    #expect(try file.weight("input_ids").values == [1, 2, 3, 4, 5, 6])
    // The printed top-1 of the first position is the argmax of the saved logits.
    let first = Array(logits.values[0..<512])
    let argmax = first.indices.max { first[$0] < first[$1] } ?? -1
    #expect(lines[1].split(separator: " ").dropFirst(3).first == "\(argmax):")
  }

  @Test("token ids outside the vocabulary, missing or doubled token options are usage errors (exit 64)")
  func usageErrors() {
    for arguments in [["--tokens", "1,512"], [], ["--tokens", "1", "--tokens-file", "x"], ["--tokens", "1,a"]] {
      let stdout = TextOutput.capture(), stderr = TextOutput.capture()
      let status = SmeltCommands.run(arguments: ["forward", Fixtures.bf16Sample] + arguments, stdout: stdout, stderr: stderr)
      #expect(status == 64, "\(arguments): \(stderr.text)")
    }
    let stderr = TextOutput.capture()
    _ = SmeltCommands.run(arguments: ["forward", Fixtures.bf16Sample, "--tokens", "1,512"], stdout: .capture(), stderr: stderr)
    #expect(stderr.text.contains("token id 512"))
  }
}
