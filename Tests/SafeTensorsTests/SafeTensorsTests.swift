import Testing
@testable import SafeTensors

