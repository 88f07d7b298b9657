package partition

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/vfs"
)

// Options are what Create and Open need besides the partition's name.
type Options struct {
	FS     vfs.FS
	Dir    string
	ID     ID
	Config Config
	Env    *segment.Env
	Now    func() time.Time // nil means time.Now
	// Producer bounds the producer state (producer.id.expiration.ms,
	// producers per partition); zero fields take the defaults.
	Producer producer.Options
	// Logger receives one line per segment roll; nil discards.
	Logger *slog.Logger
}

func newPartition(o Options) *Partition {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Partition{id: o.ID, dir: o.Dir, fs: o.FS, env: o.Env, now: now, log: log, prodOpts: o.Producer.WithDefaults()}
	p.mu.cfg = o.Config
	p.mu.producers = producer.New(p.prodOpts)
	p.mu.pending = map[int64]*pendingProducer{}
	p.mu.changed = make(chan struct{})
	p.mu.created = now()
	p.mu.inlineAt = -1
	return p
}

// Create makes a new, empty partition in o.Dir, which must exist. The
// caller syncs the parent directory.
func Create(o Options) (*Partition, error) {
	if err := errors.Join(o.Config.Validate(), o.Producer.Validate()); err != nil {
		return nil, err
	}
	p := newPartition(o)
	seg, err := segment.Create(o.FS, o.Dir, 0, segment.Options{IndexIntervalBytes: o.Config.IndexIntervalBytes})
	if err != nil {
		return nil, err
	}
	p.mu.segs = []*segment.Segment{seg}
	p.mu.dirDirty = true
	return p, nil
}

// RecoveryStats says what opening a partition had to do.
type RecoveryStats struct {
	Segments       int   // segments found
	ScannedBytes   int64 // bytes verified with CRCs
	TruncatedBytes int64 // torn or corrupt bytes cut off
	DroppedSegs    int   // segments past a cut, removed
	// Producers says how the producer state was rebuilt: from which
	// snapshot, scanning how many batches.
	Producers ProducerRecovery
}

// Open recovers a partition from its directory. cp is what the last
// checkpoint recorded for it (nil if none): segments before cp.SegmentBase
// and the first cp.Position bytes of that segment are trusted without
// reading them; everything after is verified with CRCs and cut at the first
// bad batch. Startup work is therefore bounded by what was written since
// the checkpoint, not by the size of the log.
func Open(o Options, cp *FlushState) (*Partition, RecoveryStats, error) {
	var st RecoveryStats
	if err := errors.Join(o.Config.Validate(), o.Producer.Validate()); err != nil {
		return nil, st, err
	}
	p := newPartition(o)
	names, err := o.FS.ReadDir(o.Dir)
	if err != nil {
		return nil, st, fmt.Errorf("partition: open %s: %w", o.Dir, err)
	}
	// A compaction interrupted by a crash: discard its uncommitted
	// output, complete its committed swaps.
	if names, err = finishCompaction(o.FS, o.Dir, names); err != nil {
		return nil, st, err
	}
	if names, err = cleanProducerFiles(o.FS, o.Dir, names); err != nil {
		return nil, st, err
	}
	var bases []int64
	for _, n := range names {
		if base, suf, ok := segment.ParseName(n); ok && suf == segment.LogSuffix {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	st.Segments = len(bases)
	segOpts := segment.Options{IndexIntervalBytes: o.Config.IndexIntervalBytes}

	fail := func(err error) (*Partition, RecoveryStats, error) {
		for _, s := range p.mu.segs {
			s.Close()
		}
		return nil, st, err
	}
	for i := 0; i < len(bases); i++ {
		base := bases[i]
		last := i == len(bases)-1
		if cp != nil && base < cp.SegmentBase && !last {
			fi, err := o.FS.Stat(filepath.Join(o.Dir, segment.Name(base)+segment.LogSuffix))
			if err != nil {
				return fail(fmt.Errorf("partition: open %s: %w", o.Dir, err))
			}
			p.mu.segs = append(p.mu.segs, segment.OpenSealed(o.FS, o.Dir, base, bases[i+1], fi.Size(), segOpts))
			continue
		}
		trusted := int64(0)
		if cp != nil && base == cp.SegmentBase {
			trusted = cp.Position
		}
		seg, cut, err := segment.Recover(o.FS, o.Dir, base, trusted, segOpts)
		if err != nil {
			return fail(err)
		}
		st.ScannedBytes += seg.Size() + cut - min(trusted, seg.Size())
		st.TruncatedBytes += cut
		p.mu.segs = append(p.mu.segs, seg)
		if last {
			break
		}
		if seg.Next() != bases[i+1] {
			// A cut in the middle: the later segments continue
			// offsets that no longer exist. The WAL replays them.
			for _, b := range bases[i+1:] {
				dead := segment.OpenSealed(o.FS, o.Dir, b, b, 0, segOpts)
				if err := dead.Remove(o.Env.Files); err != nil {
					return fail(err)
				}
				st.DroppedSegs++
			}
			p.mu.dirDirty = true
			break
		}
		seg.Seal()
	}
	if len(p.mu.segs) == 0 {
		base := int64(0)
		if cp != nil {
			base = cp.Next
		}
		seg, err := segment.Create(o.FS, o.Dir, base, segOpts)
		if err != nil {
			return fail(err)
		}
		p.mu.segs = []*segment.Segment{seg}
		p.mu.dirDirty = true
	}
	p.mu.end = p.activeLocked().Next()
	p.mu.next = p.mu.end
	p.mu.logStart = p.mu.segs[0].Base()
	if cp != nil && cp.LogStart > p.mu.logStart {
		p.mu.logStart = min(cp.LogStart, p.mu.end)
	}
	if cp != nil {
		// Compaction touches only segments below a checkpoint's
		// segment base, so what it cleaned survived the crash intact.
		p.mu.cleanedTo = min(max(cp.CleanedTo, 0), p.mu.end)
	}
	// The producer state: from the newest snapshot the checkpoint
	// covers (a later one may describe data a crash took), scanning
	// the log after it. Without a checkpoint entry, from the start.
	limit, full := int64(-1), cp == nil
	var inline []byte
	if cp != nil {
		limit, inline = cp.Next, cp.Producers
	}
	if st.Producers, err = p.loadProducersLocked(names, limit, full, inline); err != nil {
		return fail(err)
	}
	if err := p.removeSnapshotsAbove(names, p.mu.end); err != nil {
		return fail(err)
	}
	return p, st, nil
}
