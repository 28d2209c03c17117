import SafeTensors

extension ShardPlan {
  /// The exact layout (header bytes and tensor offsets) of output file `index`, as the official
  /// `safetensors` writer orders it. Deterministic, so parts and `--finalize` agree byte for byte.
  public func layout(ofFile index: Int) throws(ShardingError) -> SafeTensorsLayout {
    let file = files[index]
    let tensors = devices[file.device].tensors
    let planned = file.tensorIndices.map { PlannedTensor(name: tensors[$0].name, dtype: tensors[$0].dtype, shape: tensors[$0].shape) }
    do {
      return try SafeTensorsLayout(tensors: planned, metadata: file.formatMetadata ? SafeTensorsLayout.defaultMetadata : nil)
    } catch {
      throw .io(path: file.relativePath, reason: "cannot lay out the file: \(error)")
    }
  }
}
