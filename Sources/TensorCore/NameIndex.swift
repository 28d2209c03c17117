/// A hash index from names to their positions in an array its owner keeps (a header's tensors, a
/// checkpoint's tensor list): constant-time lookup by name without a second copy of the names.
///
/// Names are compared and hashed as UTF-8 bytes, so a lookup can start from bytes that are not yet a
/// `String` (a key in a JSON buffer). The index stores 8 bytes per slot (a 32-bit hash tag and the
/// position) at a load of at most 1/2; the owner answers "which name is at position p" when the index
/// must compare or rehash.
///
/// Hashing is a fast multiply-xorshift over 8-byte words with a per-process random seed. Should a probe
/// sequence ever grow long (names crafted to collide), the index rehashes with the standard library's
/// SipHash (`Hasher`, also randomly seeded), so hostile names cost linear time, not quadratic.
public struct NameIndex: Sendable {
  /// 0 for an empty slot, else `tag << 32 | (position + 1)`.
  @usableFromInline var slots: [UInt64]
  @usableFromInline var mask: Int
  /// True after a long probe sequence: hash with SipHash from then on.
  @usableFromInline var usesSipHash = false
  /// The number of names indexed.
  public var count: Int { storedCount }
  @usableFromInline var storedCount = 0

  /// Probe lengths beyond this switch the index to SipHash.
  @usableFromInline static let longProbe = 48

  /// An empty index sized for `capacity` names without growing.
  public init(capacity: Int = 0) {
    var size = 16
    while size < 2 * capacity { size <<= 1 }
    slots = Array(repeating: 0, count: size)
    mask = size - 1
  }

  /// An index of `names` (positions are their offsets in the collection), or the position of the first
  /// name that repeats an earlier one.
  public static func build(_ names: [String]) -> Result<NameIndex, DuplicateName> {
    var index = NameIndex(capacity: names.count)
    for position in names.indices {
      if let earlier = index.insert(names[position], position: position, nameAt: { names[$0] }) {
        return .failure(DuplicateName(position: position, earlierPosition: earlier))
      }
    }
    return .success(index)
  }

  /// A name that occurs twice.
  public struct DuplicateName: Error, Sendable {
    /// The later occurrence.
    public let position: Int
    /// The first occurrence.
    public let earlierPosition: Int
  }

  // MARK: - Lookup

  /// The position of `name`, or `nil`. `nameAt` returns the name at an indexed position.
  @inlinable public func position(of name: String, nameAt: (Int) -> String) -> Int? {
    NameIndex.withUTF8(name) { position(ofUTF8: $0, nameAt: nameAt) }
  }

  /// The position of the name whose UTF-8 bytes are `bytes`, or `nil`.
  @inlinable public func position(ofUTF8 bytes: UnsafeRawBufferPointer, nameAt: (Int) -> String) -> Int? {
    position(ofUTF8: bytes) { position, body in NameIndex.withUTF8(nameAt(position), body) }
  }

  /// The position of the name whose UTF-8 bytes are `bytes`, or `nil`, for owners that keep names as
  /// bytes: `withNameAt(p, body)` calls `body` with the bytes of the name at position `p`.
  @inlinable public func position(
    ofUTF8 bytes: UnsafeRawBufferPointer, withNameAt: (Int, (UnsafeRawBufferPointer) -> Void) -> Void
  ) -> Int? {
    let hash = self.hash(bytes)
    let tag = hash >> 32
    var slot = Int(truncatingIfNeeded: hash) & mask
    while true {
      let value = slots[slot]
      if value == 0 { return nil }
      if value >> 32 == tag {
        let position = Int(truncatingIfNeeded: value & 0xFFFF_FFFF) - 1
        if NameIndex.equals(position, bytes, withNameAt) { return position }
      }
      slot = (slot &+ 1) & mask
    }
  }

  // MARK: - Insertion

  /// Indexes `name` at `position`; returns the position of an equal name already indexed (and changes
  /// nothing) or `nil` when inserted. `nameAt` must answer for every indexed position, `position` included.
  @inlinable @discardableResult
  public mutating func insert(_ name: String, position: Int, nameAt: (Int) -> String) -> Int? {
    NameIndex.withUTF8(name) { insert(utf8: $0, position: position, nameAt: nameAt) }
  }

  /// `insert(_:position:nameAt:)` for a name given as UTF-8 bytes.
  @inlinable @discardableResult
  public mutating func insert(utf8 bytes: UnsafeRawBufferPointer, position: Int, nameAt: (Int) -> String) -> Int? {
    insert(utf8: bytes, position: position) { position, body in NameIndex.withUTF8(nameAt(position), body) }
  }

  /// `insert(utf8:position:nameAt:)` for owners that keep names as bytes (see `position(ofUTF8:withNameAt:)`).
  @inlinable @discardableResult
  public mutating func insert(
    utf8 bytes: UnsafeRawBufferPointer, position: Int, withNameAt: (Int, (UnsafeRawBufferPointer) -> Void) -> Void
  ) -> Int? {
    precondition(position >= 0 && position < Int(UInt32.max), "name position out of range")
    if 2 * (storedCount + 1) > slots.count { rehash(size: slots.count * 2, withNameAt: withNameAt) }
    let hash = self.hash(bytes)
    let tag = hash >> 32
    var slot = Int(truncatingIfNeeded: hash) & mask
    var probes = 0
    while true {
      let value = slots[slot]
      if value == 0 { break }
      if value >> 32 == tag {
        let existing = Int(truncatingIfNeeded: value & 0xFFFF_FFFF) - 1
        if NameIndex.equals(existing, bytes, withNameAt) { return existing }
      }
      slot = (slot &+ 1) & mask
      probes &+= 1
    }
    slots[slot] = tag << 32 | UInt64(position + 1)
    storedCount += 1
    if probes > NameIndex.longProbe, !usesSipHash {
      usesSipHash = true
      rehash(size: slots.count, withNameAt: withNameAt)
    }
    return nil
  }

  @usableFromInline mutating func rehash(size: Int, withNameAt: (Int, (UnsafeRawBufferPointer) -> Void) -> Void) {
    let old = slots
    slots = Array(repeating: 0, count: size)
    mask = size - 1
    for value in old where value != 0 {
      let position = Int(truncatingIfNeeded: value & 0xFFFF_FFFF) - 1
      var hash: UInt64 = 0
      withNameAt(position) { hash = self.hash($0) }
      var slot = Int(truncatingIfNeeded: hash) & mask
      while slots[slot] != 0 { slot = (slot &+ 1) & mask }
      slots[slot] = (hash >> 32) << 32 | UInt64(position + 1)
    }
  }

  // MARK: - Hashing and comparing bytes

  @inlinable func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    if usesSipHash {
      var hasher = Hasher()
      hasher.combine(bytes: bytes)
      return UInt64(UInt(bitPattern: hasher.finalize()))
    }
    return NameIndex.fastHash(bytes)
  }

  /// Multiply-xorshift over 8-byte words, seeded per process.
  @inlinable static func fastHash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    let count = bytes.count
    var h = nameIndexSeed ^ (UInt64(count) &* 0x9E37_79B9_7F4A_7C15)
    guard let base = bytes.baseAddress else { return finalize(h) }
    var i = 0
    while i &+ 8 <= count {
      h = (h ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
      h ^= h >> 31
      i &+= 8
    }
    if i < count {
      var tail: UInt64 = 0
      if count >= 8 {
        // The last 1-7 bytes, from one load that ends at the last byte.
        tail = base.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self) >> UInt64(8 &* (8 &- (count &- i)))
      } else {
        var shift: UInt64 = 0
        while i < count {
          tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
          shift &+= 8
          i &+= 1
        }
      }
      h = (h ^ tail) &* 0xFF51_AFD7_ED55_8CCD
    }
    return finalize(h)
  }

  @inlinable static func finalize(_ value: UInt64) -> UInt64 {
    var h = value
    h ^= h >> 33
    h = h &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 29
    return h
  }

  /// True when the name at `position` has exactly the UTF-8 bytes `bytes`.
  @inlinable static func equals(
    _ position: Int, _ bytes: UnsafeRawBufferPointer, _ withNameAt: (Int, (UnsafeRawBufferPointer) -> Void) -> Void
  ) -> Bool {
    var equal = false
    withNameAt(position) { equal = bytesEqual($0, bytes) }
    return equal
  }

  /// Byte equality, eight bytes at a time.
  @inlinable public static func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    let count = a.count
    guard count == b.count else { return false }
    guard count > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return true }
    var i = 0
    while i &+ 8 <= count {
      if pa.loadUnaligned(fromByteOffset: i, as: UInt64.self) != pb.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
        return false
      }
      i &+= 8
    }
    while i < count {
      if pa.load(fromByteOffset: i, as: UInt8.self) != pb.load(fromByteOffset: i, as: UInt8.self) { return false }
      i &+= 1
    }
    return true
  }

  /// Calls `body` with `name`'s UTF-8 bytes (no copy for native strings).
  @inlinable public static func withUTF8<R>(_ name: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let result = name.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
      return result
    }
    return Array(name.utf8).withUnsafeBytes(body)
  }
}

/// The per-process seed of `NameIndex.fastHash` (names crafted offline cannot target it).
@usableFromInline let nameIndexSeed: UInt64 = {
  var generator = SystemRandomNumberGenerator()
  return generator.next()
}()
