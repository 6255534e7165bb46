// Package audit describes the hub's audit log entries and carries the
// entry of a request through its context: the API and the web UI start
// one for every change, handlers add what only they know (the reason),
// and the entry is stored once the change succeeded.
package audit

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Actor kinds.
const (
	ActorToken     = "token"
	ActorUser      = "user"
	ActorAppliance = "appliance"
	ActorHub       = "hub"
)

// Entry is one line of the audit log. It never holds a secret: objects
// are named by kind and id, and the reason is what a person typed as one.
type Entry struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	ContainerID int64     `json:"containerId"`
	ActorKind   string    `json:"actorKind"`
	ActorID     int64     `json:"actorId"`
	Action      string    `json:"action"`
	ObjectKind  string    `json:"objectKind,omitempty"`
	ObjectID    int64     `json:"objectId,omitempty"`
	Address     string    `json:"address,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Status      int       `json:"status,omitempty"`
	Detail      string    `json:"detail,omitempty"`
}

// MaxReason bounds the reason stored.
const MaxReason = 500

// Pending is the entry of a request in progress.
type Pending struct {
	mu sync.Mutex
	e  Entry
}

// NewPending starts an entry.
func NewPending(e Entry) *Pending { return &Pending{e: e} }

// Entry returns a copy of the entry.
func (p *Pending) Entry() Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.e
}

// Update changes the entry under the lock.
func (p *Pending) Update(f func(*Entry)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.e)
}

type key struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p *Pending) context.Context { return context.WithValue(ctx, key{}, p) }

// From returns the request's pending entry, or nil.
func From(ctx context.Context) *Pending {
	p, _ := ctx.Value(key{}).(*Pending)
	return p
}

// SetReason records the reason a person gave for the change (cut to
// MaxReason bytes, on one line).
func SetReason(ctx context.Context, reason string) {
	p := From(ctx)
	if p == nil {
		return
	}
	reason = strings.Join(strings.Fields(reason), " ")
	if len(reason) > MaxReason {
		reason = strings.ToValidUTF8(reason[:MaxReason], "")
	}
	p.Update(func(e *Entry) { e.Reason = reason })
}

// SetDetail records what else the entry should say (the user whose
// access changed, the permissions given). Never a secret.
func SetDetail(ctx context.Context, detail string) {
	if p := From(ctx); p != nil {
		p.Update(func(e *Entry) { e.Detail = detail })
	}
}

// SetObject records the object a change made (a created id).
func SetObject(ctx context.Context, kind string, id int64) {
	if p := From(ctx); p != nil {
		p.Update(func(e *Entry) { e.ObjectKind, e.ObjectID = kind, id })
	}
}

// Object derives the kind of object a route acts on and the name of its
// id in the path from the pattern: the segment before the first wildcard
// ("POST /api/v1/container/{id}/condition" → "container", "id"). The
// prefix (e.g. "/api/v1/") is removed first.
func Object(pattern, prefix string) (kind, param string) {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	pattern = strings.TrimPrefix(pattern, prefix)
	segs := strings.Split(strings.Trim(pattern, "/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && i > 0 {
			return segs[i-1], strings.Trim(s, "{}.")
		}
	}
	return "", ""
}
