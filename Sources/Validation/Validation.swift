// Module Validation.
