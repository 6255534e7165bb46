package stream

import "time"

// Live is what the hub knows of a connected appliance beyond its stored
// record: where it connects from, since when, and what it last reported.
type Live struct {
	ConnectedSince time.Time
	RemoteAddr     string
	Version        string
	// LastData is when the appliance last sent check data.
	LastData time.Time
	// Buffered and Dropped are what the appliance reports of its disk
	// buffer: packets waiting for the hub, and packets dropped because
	// the buffer was full.
	Buffered int64
	Dropped  int64
	Probes   []ProbeInfo
	// Missing lists the probe keys the appliance was asked to run but
	// does not have.
	Missing []string
	// ClockSkew is the appliance's clock minus the hub's, from its last
	// info reply.
	ClockSkew time.Duration
	Assets    int
}

// ProbeInfo is one probe an appliance runs.
type ProbeInfo struct {
	Key     string `json:"key"`
	Version string `json:"version"`
}
