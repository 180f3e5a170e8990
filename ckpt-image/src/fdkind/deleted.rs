//! Deleted files and memfds: their saved values (the contents are `FdRecord::data_*`).
