public enum SmeltCommands { public static func main() { print("smelt") } }
