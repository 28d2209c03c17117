import ReferenceModel
import Synchronization

/// The input rows one linear received in the reference forward pass: `values[rowCount, in]`.
struct CapturedInput: Sendable {
  var values: [Float]
  var rowCount: Int
}

/// Collects, during the reference forward pass, the inputs the selected linears of the running layer really
/// receive (`ReferenceModel.linearInputObserver`): the normalized residual stream for the attention and MLP
/// projections and the router, the attention output for `o_proj`, each routed expert's own tokens, the
/// activated intermediate for `down_proj`. The layer level takes them after each layer, so at most one
/// layer's captures are held at a time.
final class CapturedLinearInputs: Sendable {
  private let wanted: Set<String>
  private let captured = Mutex([String: CapturedInput]())

  /// Captures the linears named in `wanted` (their `.weight` names) and ignores every other.
  init(wanted: Set<String>) {
    self.wanted = wanted
  }

  /// The observer to install on the reference model. A linear run twice in a layer keeps the rows of both.
  var observer: LinearInputObserver {
    { [self] name, input, rowCount in
      guard wanted.contains(name) else { return }
      captured.withLock { captured in
        captured[name, default: CapturedInput(values: [], rowCount: 0)].values += input
        captured[name, default: CapturedInput(values: [], rowCount: 0)].rowCount += rowCount
      }
    }
  }

  /// The captures since the last call, which are then forgotten.
  func take() -> [String: CapturedInput] {
    captured.withLock { captured in
      defer { captured = [:] }
      return captured
    }
  }
}
