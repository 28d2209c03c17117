/// A mutable buffer that several threads write at the same time, each to its own index range.
///
/// This is the one audited `@unchecked Sendable` type in Smelt. The contract: while work is in flight,
/// no two workers write the same index, and nobody reads an index another worker writes. Parallel
/// kernels (`DispatchQueue.concurrentPerform` over row ranges) capture this wrapper instead of a raw
/// `UnsafeMutableBufferPointer`, which Swift 6 rightly refuses to send across threads.
public struct DisjointMutableBuffer<Element>: @unchecked Sendable {
  /// The wrapped buffer. Valid only for the lifetime of the allocation it was made from.
  public let buffer: UnsafeMutableBufferPointer<Element>

  /// Wraps `buffer`; the caller guarantees the disjoint-writes contract above.
  public init(_ buffer: UnsafeMutableBufferPointer<Element>) { self.buffer = buffer }

  /// The slice `range` as its own buffer (bounds-checked once here).
  public func slice(_ range: Range<Int>) -> UnsafeMutableBufferPointer<Element> {
    precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "slice out of bounds")
    return UnsafeMutableBufferPointer(rebasing: buffer[range])
  }
}

/// A read-only buffer shared by parallel workers. Reading raw memory from several threads is safe; the
/// wrapper exists because Swift 6 does not let unsafe pointers cross into `@Sendable` closures.
public struct SharedRawBuffer: @unchecked Sendable {
  /// The wrapped bytes. Valid only while their owner (a mapping or an allocation) is alive.
  public let bytes: UnsafeRawBufferPointer
  /// Wraps `bytes`; the caller keeps the owner alive while workers run.
  public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
}
