// Package wire holds InfraSonar's wire formats (INFRASONAR-WIRE.md §1–4):
// the 16-byte packet framing, a MessagePack codec, check data in
// MessagePack, and the typed bodies of the appliance ↔ hub stream and of the
// probe ↔ appliance port.
//
// It does no I/O policy: no timeouts, retries, connections or goroutines.
// Readers and writers are given to it; callers decide when to close them.
//
// Every decoder in the package treats its input as hostile: lengths are
// checked against what remains before anything is allocated, nesting is
// bounded, and a packet larger than the caller's limit is refused before its
// body is read.
package wire
