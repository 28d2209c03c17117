// Module SystemIO.
