import SmeltCommands

SmeltCommands.main()
