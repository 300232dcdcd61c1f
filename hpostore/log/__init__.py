"""The log format contract (events, tail codec, segments, checksums), importing nothing above it."""
