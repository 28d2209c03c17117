import Testing
@testable import Sharding

