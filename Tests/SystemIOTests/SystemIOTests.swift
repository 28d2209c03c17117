import Testing
@testable import SystemIO

private func scratchDirectory(_ name: String = #function) throws -> String {
  let base = "/tmp/smelt-tests-\(getpid())"
  let path = FileSystem.join(base, name.filter { $0.isLetter || $0.isNumber })
  try FileSystem.removeTree(path)
  try FileSystem.createDirectory(path)
  return path
}

#if canImport(Glibc)
  import Glibc
#endif

@Suite("System I/O") struct SystemIOTests {
  @Test("an atomic output file appears only after commit")
  func atomicCommit() throws {
    let dir = try scratchDirectory()
    let path = FileSystem.join(dir, "out.bin")
    let file = try AtomicOutputFile(path: path, byteCount: 8)
    try file.write([1, 2, 3, 4], at: 4)
    #expect(!FileSystem.exists(path))
    #expect(FileSystem.exists(file.temporaryPath))
    try file.commit()
    #expect(try FileSystem.readFile(path) == [0, 0, 0, 0, 1, 2, 3, 4])
    #expect(!FileSystem.exists(file.temporaryPath))
  }

  @Test("an abandoned output file leaves nothing behind")
  func abandonRemovesTemporary() throws {
    let dir = try scratchDirectory()
    let path = FileSystem.join(dir, "out.bin")
    do {
      let file = try AtomicOutputFile(path: path)
      try file.write([9], at: 0)
    }
    #expect(try FileSystem.contents(of: dir).isEmpty)
  }

  @Test("maps files zero-copy, including empty ones")
  func mapping() throws {
    let dir = try scratchDirectory()
    let path = FileSystem.join(dir, "data.bin")
    try FileSystem.writeFileAtomically(Array(0..<200).map { UInt8($0) }, to: path)
    let mapped = try MappedFile(path: path)
    #expect(mapped.byteCount == 200)
    #expect(mapped.bytes[199] == 199)
    let emptyPath = FileSystem.join(dir, "empty.bin")
    try FileSystem.writeFileAtomically([], to: emptyPath)
    #expect(try MappedFile(path: emptyPath).bytes.isEmpty)
  }

  @Test("copies byte ranges between files")
  func copyRange() throws {
    let dir = try scratchDirectory()
    let source = FileSystem.join(dir, "a.bin")
    try FileSystem.writeFileAtomically(Array(0..<100).map { UInt8($0) }, to: source)
    let input = try FileDescriptor.open(source, .readOnly)
    defer { input.close() }
    let output = try AtomicOutputFile(path: FileSystem.join(dir, "b.bin"), byteCount: 10)
    try FileCopy.copy(from: input, offset: 50, to: output.fileDescriptor, offset: 2, byteCount: 8)
    try output.commit()
    #expect(try FileSystem.readFile(FileSystem.join(dir, "b.bin")) == [0, 0, 50, 51, 52, 53, 54, 55, 56, 57])
  }

  @Test("reading past the end of a file is an error naming the offset")
  func shortRead() throws {
    let dir = try scratchDirectory()
    let path = FileSystem.join(dir, "short.bin")
    try FileSystem.writeFileAtomically([1, 2, 3], to: path)
    let fd = try FileDescriptor.open(path, .readOnly)
    defer { fd.close() }
    var buffer = [UInt8](repeating: 0, count: 8)
    #expect(throws: SystemError.self) {
      try buffer.withUnsafeMutableBytes { try fd.read(into: $0, at: 0) }
    }
  }

  @Test("a second lock on the same directory is refused")
  func directoryLock() throws {
    let dir = try scratchDirectory()
    let first = try DirectoryLock(directory: dir)
    #expect(throws: DirectoryLock.HeldError.self) { _ = try DirectoryLock(directory: dir) }
    first.release()
    let again = try DirectoryLock(directory: dir)
    again.release()
  }

  @Test("missing files give an error naming the path")
  func missingFile() {
    do {
      _ = try MappedFile(path: "/nonexistent/model.safetensors")
      Issue.record("expected an error")
    } catch {
      #expect(error.description.contains("/nonexistent/model.safetensors"))
      #expect(error.description.contains("No such file"))
    }
  }
}
