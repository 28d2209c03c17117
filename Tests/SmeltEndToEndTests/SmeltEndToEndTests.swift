import Testing
import SmeltCommands

