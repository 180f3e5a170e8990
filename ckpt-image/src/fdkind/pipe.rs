//! Pipes and FIFOs: their saved values (the queued bytes are `FdRecord::data_*`).
