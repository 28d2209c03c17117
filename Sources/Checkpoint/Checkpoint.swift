// Module Checkpoint.
