// CommandLineSupport: a small command-line layer that reproduces swift-argument-parser's observable contract
// (see shared/reference/swift-house-style.md §1.2 and §2.6) without the dependency.
//
// - `Command` / `CommandConfiguration` / `ArgumentSpec`: declarative commands.
// - `CommandLineParser`: pure tokenizing and parsing, `[String]` -> `ParsedArguments` or `UsageError`.
// - `ParsedArguments`: typed accessors (int, double, byte sizes, choices, pairs) that throw `UsageError`.
// - `HelpFormatter`: help and usage text at an explicit width.
// - `CommandLineTool`: the runner: help/version, error printing and the exit-code policy (0, 1, 64, n).
// - `TextOutput`, `Terminal`: unbuffered stdout/stderr (or in-memory capture for tests), `isatty`, `$COLUMNS`.
// - `ProgressReporter`: a thread-safe progress bar on stderr, rendering as a pure function.
// - `InterruptHandler`: SIGINT/SIGTERM -> run registered cleanups, print `Interrupted.`, exit 130.
