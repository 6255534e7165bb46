// Throwaway: measures one query's cost. Not part of the change.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/tsstore/local"
)

func main() {
	dir, _ := os.MkdirTemp("", "attack")
	defer os.RemoveAll(dir)
	s, err := local.Open(dir, local.Options{}, nil, nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	q := os.Args[1]
	start := time.Now()
	ctx := context.Background()
	var v any
	if len(os.Args) > 2 {
		d, _ := time.ParseDuration(os.Args[2])
		st, _ := time.ParseDuration(os.Args[3])
		v, err = s.QueryRange(ctx, tsstore.Scope{ContainerIDs: []string{"c1"}}, q, time.Now().Add(-d), time.Now(), st)
	} else {
		v, err = s.Query(ctx, tsstore.Scope{ContainerIDs: []string{"c1"}}, q, time.Now())
	}
	_ = v
	fmt.Printf("query %q: %v after %v\n", q, err, time.Since(start))
}
