//! TODO(issue 13): system calls of this family of descriptors.
