import Testing
@testable import CommandLineSupport

