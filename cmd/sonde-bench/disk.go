package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/prometheus/tsdb"

	"github.com/sonde-monitoring/sonde/internal/tsstore/local"
)

// Disk is what a time-series database holds on disk once everything in
// memory is compacted into blocks.
type Disk struct {
	// BytesAtStop is every file under the directory when the server
	// stopped: blocks, write-ahead log, memory-mapped head chunks.
	BytesAtStop int64 `json:"bytes_at_stop"`
	// Head is the blocks right after compacting the head into two-hour
	// blocks; Merged the blocks after the TSDB's own level compaction
	// (2h → 6h → 18h → …, as a running hub does over time).
	Head   Blocks `json:"head_compacted"`
	Merged Blocks `json:"merged"`
	// OtherBytesAfter is what is left outside the blocks (WAL, head
	// chunks) after the compactions; it is not counted in the blocks.
	OtherBytesAfter int64 `json:"other_bytes_after"`
}

// Blocks measures the block directories (01…) of a TSDB.
type Blocks struct {
	Count int `json:"blocks"`
	// Bytes is all files of the blocks (chunks, index, meta.json,
	// tombstones); ChunkBytes their chunks/ files; IndexBytes their
	// index files.
	Bytes      int64 `json:"bytes"`
	ChunkBytes int64 `json:"chunk_bytes"`
	IndexBytes int64 `json:"index_bytes"`
	// Samples, Series and Chunks sum the blocks' meta.json stats.
	Samples int64 `json:"samples"`
	Series  int64 `json:"series"`
	Chunks  int64 `json:"chunks"`
	// BytesPerSample is Bytes / Samples; ChunkBytesPerSample is
	// ChunkBytes / Samples: the samples' encoding without the index.
	BytesPerSample      float64 `json:"bytes_per_sample"`
	ChunkBytesPerSample float64 `json:"chunk_bytes_per_sample"`
}

// compactAndMeasure opens the stopped server's TSDB directory with the
// hub's store, writes the head (WAL) into blocks and measures them; then
// lets the TSDB merge the blocks as it does over time, and measures again.
func compactAndMeasure(ctx context.Context, dir string) (*Disk, error) {
	var d Disk
	var err error
	if d.BytesAtStop, err = dirBytes(dir); err != nil {
		return nil, err
	}
	st, err := local.Open(dir, local.Options{}, nil, nil)
	if err != nil {
		return nil, err
	}
	err = st.CompactHead(ctx)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if d.Head, _, err = measureBlocks(dir); err != nil {
		return nil, err
	}
	if err := mergeBlocks(ctx, dir); err != nil {
		return nil, err
	}
	if d.Merged, d.OtherBytesAfter, err = measureBlocks(dir); err != nil {
		return nil, err
	}
	return &d, nil
}

// mergeBlocks runs the TSDB's compaction of blocks into larger ones, with
// the block ranges the hub's store uses (internal/tsstore/local: up to a
// tenth of the retention, at most 31 days).
func mergeBlocks(ctx context.Context, dir string) error {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = local.DefaultRetention.Milliseconds()
	maxBlock := min(local.DefaultRetention/10, 31*24*time.Hour)
	opts.MaxBlockDuration = max(maxBlock.Milliseconds(), opts.MinBlockDuration)
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
	if err != nil {
		return fmt.Errorf("opening %s to merge its blocks: %w", dir, err)
	}
	err = db.Compact(ctx)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("merging the blocks of %s: %w", dir, err)
	}
	return nil
}

// measureBlocks measures the block directories of dir, and the bytes of
// everything else in it.
func measureBlocks(dir string) (b Blocks, other int64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return b, 0, fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.IsDir() || !isBlockDir(e.Name()) {
			n, err := dirBytes(path)
			if err != nil {
				return b, 0, err
			}
			other += n
			continue
		}
		meta, err := readBlockMeta(path)
		if err != nil {
			return b, 0, err
		}
		var n, chunks, index int64
		for _, m := range []struct {
			p string
			n *int64
		}{{path, &n}, {filepath.Join(path, "chunks"), &chunks}, {filepath.Join(path, "index"), &index}} {
			if *m.n, err = dirBytes(m.p); err != nil {
				return b, 0, err
			}
		}
		b.Count++
		b.Bytes += n
		b.ChunkBytes += chunks
		b.IndexBytes += index
		b.Samples += meta.Stats.NumSamples
		b.Series += meta.Stats.NumSeries
		b.Chunks += meta.Stats.NumChunks
	}
	if b.Samples > 0 {
		b.BytesPerSample = float64(b.Bytes) / float64(b.Samples)
		b.ChunkBytesPerSample = float64(b.ChunkBytes) / float64(b.Samples)
	}
	return b, other, nil
}

// isBlockDir tells a block directory, named by a ULID (26 characters of
// Crockford's base32, "01…" for the coming centuries), from the WAL,
// chunks_head and temporary directories.
func isBlockDir(name string) bool {
	if len(name) != 26 || !strings.HasPrefix(name, "0") {
		return false
	}
	for _, c := range name {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) {
			return false
		}
	}
	return true
}

type blockMeta struct {
	Stats struct {
		NumSamples int64 `json:"numSamples"`
		NumSeries  int64 `json:"numSeries"`
		NumChunks  int64 `json:"numChunks"`
	} `json:"stats"`
}

func readBlockMeta(dir string) (blockMeta, error) {
	var m blockMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json")) // #nosec G304 -- a block of the TSDB directory sonde-bench measures
	if err != nil {
		return m, fmt.Errorf("reading the block's meta.json: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decoding %s/meta.json: %w", dir, err)
	}
	return m, nil
}

// dirBytes is the size of the regular files under path (or of path).
func dirBytes(path string) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measuring %s: %w", path, err)
	}
	return total, nil
}
