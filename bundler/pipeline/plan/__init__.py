"""The pure planning core: no I/O, plain immutable data in and out."""
