/// True when `lhs` sorts before `rhs` by UTF-8 bytes, the order Rust's `String::cmp` (and so the official
/// writer) uses. Equal to Unicode code point order. Fast for native strings (contiguous UTF-8).
func utf8Precedes(_ lhs: String, _ rhs: String) -> Bool {
  let fast = lhs.utf8.withContiguousStorageIfAvailable { l in
    rhs.utf8.withContiguousStorageIfAvailable { r -> Bool in
      let common = min(l.count, r.count)
      var i = 0
      while i < common {
        if l[i] != r[i] { return l[i] < r[i] }
        i += 1
      }
      return l.count < r.count
    }
  }
  if let result = fast ?? nil { return result }
  return lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
}
