import Testing
@testable import ReferenceModel

