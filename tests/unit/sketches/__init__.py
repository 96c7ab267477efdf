"""Unit tests of the sketch library (grid.sketches)."""
