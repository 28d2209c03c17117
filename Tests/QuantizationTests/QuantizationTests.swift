import Testing
@testable import Quantization

