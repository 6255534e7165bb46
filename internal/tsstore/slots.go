package tsstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/prometheus/promql"
)

// ReadSlots bound a store's concurrent reads: at most total at once over
// all scopes, and at most perScope of one scope (one set of container
// IDs), so that one tenant cannot take every slot. It holds an entry only
// for the scopes that have a read running or waiting, so its size is
// bounded by the reads in flight, not by the scopes ever seen.
type ReadSlots struct {
	slots    chan struct{}
	perScope int

	mu      sync.Mutex
	byScope map[string]*scopeSlots
}

// scopeSlots are the slots of one scope.
type scopeSlots struct {
	// tokens holds one token per running read of the scope.
	tokens chan struct{}
	// users counts the reads of the scope that run or wait for a token,
	// guarded by ReadSlots.mu; the entry is removed when it drops to zero.
	users int
}

// NewReadSlots returns slots for total reads at once, perScope of one
// scope.
func NewReadSlots(total, perScope int) *ReadSlots {
	return &ReadSlots{slots: make(chan struct{}, total), perScope: perScope, byScope: map[string]*scopeSlots{}}
}

// Acquire takes a slot of the scope whose key is key (Scope.MatcherAndKey),
// then one of the store's, waiting for each until ctx ends, and returns
// their release. The scope's slot comes first: a scope that already runs
// its share of reads waits without holding a slot other scopes could use.
func (r *ReadSlots) Acquire(ctx context.Context, key string) (release func(), err error) {
	r.mu.Lock()
	e := r.byScope[key]
	if e == nil {
		e = &scopeSlots{tokens: make(chan struct{}, r.perScope)}
		r.byScope[key] = e
	}
	e.users++
	r.mu.Unlock()

	select {
	case e.tokens <- struct{}{}:
	case <-ctx.Done():
		r.done(key, e)
		return nil, QueueError(ctx, "waiting for a query slot of the scope")
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		<-e.tokens
		r.done(key, e)
		return nil, QueueError(ctx, "waiting for a query slot")
	}
	return func() {
		<-r.slots
		<-e.tokens
		r.done(key, e)
	}, nil
}

// done forgets one user of the scope's entry and removes the entry once it
// has none.
func (r *ReadSlots) done(key string, e *scopeSlots) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.users--
	if e.users == 0 {
		delete(r.byScope, key)
	}
}

// Scopes is how many scopes have a read running or waiting.
func (r *ReadSlots) Scopes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byScope)
}

// QueueError is the error of a read whose context ended while it waited
// for a slot, typed as the PromQL engine's own errors so that callers
// classify a read that timed out waiting like one that timed out running;
// the context's error stays in the chain.
func QueueError(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, promql.ErrQueryTimeout("queue"), ctx.Err())
	}
	return fmt.Errorf("%s: %w: %w", what, promql.ErrQueryCanceled("queue"), ctx.Err())
}
