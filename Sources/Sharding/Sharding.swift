// Module Sharding.
