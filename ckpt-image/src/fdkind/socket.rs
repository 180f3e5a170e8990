//! Sockets: their saved values (queued bytes of a socket pair are `FdRecord::data_*`).
