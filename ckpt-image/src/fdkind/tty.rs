//! Terminals: their saved values (settings and window size).
