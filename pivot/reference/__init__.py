"""Plain NumPy (float64) references of every C kernel, used by the tests to hold the C code equal."""
