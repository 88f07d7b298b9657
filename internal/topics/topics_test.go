package topics

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/vfs"
)

func sample(n int) []Topic {
	var ts []Topic
	for i := 0; i < n; i++ {
		t := Topic{Name: fmt.Sprintf("topic-%03d", i), ID: NewID(), Partitions: int32(i%7 + 1), Configs: map[string]string{}}
		if i%2 == 0 {
			t.Configs["retention.ms"] = fmt.Sprint(1000 * i)
			t.Configs["cleanup.policy"] = "delete"
		}
		ts = append(ts, t)
	}
	return ts
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 5, 100} {
		ts := sample(n)
		got, err := Decode("x", Encode(ts))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			got, ts = nil, nil
		}
		if !reflect.DeepEqual(got, ts) {
			t.Fatalf("n=%d: round trip differs:\n got %v\nwant %v", n, got, ts)
		}
	}
}

// Every single-byte change and every truncation must be refused with a
// CorruptError, never accepted or panicking.
func TestDecodeDetectsCorruption(t *testing.T) {
	b := Encode(sample(3))
	for i := range b {
		c := slices.Clone(b)
		c[i] ^= 0x5a
		if _, err := Decode("f", c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: err %v", i, err)
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := Decode("f", b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
	var ce *CorruptError
	c := slices.Clone(b)
	c[4] = 9 // version
	if _, err := Decode("path/topics", c); !errors.As(err, &ce) || ce.Path != "path/topics" || !strings.Contains(err.Error(), "version") {
		t.Fatalf("newer version: %v", err)
	}
}

func TestRegistryLifecycle(t *testing.T) {
	fs := vfs.NewMem()
	r, err := Open(fs, "data")
	if err != nil {
		t.Fatal(err)
	}
	a := Topic{Name: "a", ID: NewID(), Partitions: 3, Configs: map[string]string{"retention.ms": "5"}}
	if err := r.Create(a); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(a); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	b := Topic{Name: "b", ID: a.ID, Partitions: 1}
	if err := r.Create(b); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate ID: %v", err)
	}
	b.ID = NewID()
	if err := r.Create(b); err != nil {
		t.Fatal(err)
	}
	a.Partitions = 5
	a.Configs["segment.ms"] = "1000"
	if err := r.Update(a); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delete("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// What the registry says must be what a crash leaves: every change
	// above returned only after it was durable.
	crashed := fs.CrashClone(vfs.CrashOptions{})
	r2, err := Open(crashed, "data")
	if err != nil {
		t.Fatal(err)
	}
	got := r2.List()
	if len(got) != 1 || !reflect.DeepEqual(got[0], a) {
		t.Fatalf("after crash: %+v, want %+v", got, a)
	}
	if g, ok := r2.ByID(a.ID); !ok || g.Name != "a" {
		t.Fatalf("ByID: %+v %v", g, ok)
	}
	// Returned topics are copies.
	g, _ := r2.Get("a")
	g.Configs["x"] = "y"
	if g2, _ := r2.Get("a"); g2.Configs["x"] != "" {
		t.Fatal("Get returned shared configs")
	}
}

// A crash at a random point while changes are unsynced leaves either the
// old registry or the new one, and Open always succeeds.
func TestRegistryCrashAtomicity(t *testing.T) {
	seed := int64(1)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	fs := vfs.NewMem()
	r, err := Open(fs, "d")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := r.Create(Topic{Name: fmt.Sprint("t", i), ID: NewID(), Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		c := fs.CrashClone(vfs.CrashOptions{Rand: rng, UnsyncedDataPercent: 50, TornWrites: true})
		r2, err := Open(c, "d")
		if err != nil {
			t.Fatalf("seed %d step %d: %v", seed, i, err)
		}
		if r2.Len() != i+1 {
			t.Fatalf("seed %d step %d: %d topics after crash", seed, i, r2.Len())
		}
	}
}

func TestConfigDefsSortedAndValid(t *testing.T) {
	if !slices.IsSortedFunc(Defs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("Defs not sorted")
	}
	eff := Effective(nil, nil)
	if _, err := PartitionConfig(eff); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	for _, d := range Defs {
		if err := CheckValue(d.Name, d.Default); err != nil {
			t.Errorf("default of %s: %v", d.Name, err)
		}
	}
}

func TestValidateReportsEverything(t *testing.T) {
	err := Validate(map[string]string{
		"retention.ms":     "abc",
		"segment.bytes":    "1",
		"no.such.config":   "1",
		"cleanup.policy":   "compact,shred",
		"compression.type": "gzip",
	})
	for _, want := range []string{"retention.ms", "segment.bytes", "no.such.config", `unknown policy "shred"`, "recompression"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("not ErrInvalidConfig: %v", err)
	}
	if err := Validate(map[string]string{"retention.ms": "-1", "cleanup.policy": "delete", "message.timestamp.type": "LogAppendTime"}); err != nil {
		t.Fatal(err)
	}
}

func TestPartitionConfig(t *testing.T) {
	eff := Effective(map[string]string{"segment.bytes": "1048576"}, map[string]string{"retention.ms": "-1", "message.timestamp.type": "LogAppendTime"})
	c, err := PartitionConfig(eff)
	if err != nil {
		t.Fatal(err)
	}
	if c.SegmentBytes != 1<<20 || c.RetentionMs >= 0 || c.TimestampType != 1 || c.MaxMessageBytes != 1048588 {
		t.Fatalf("%+v", c)
	}
	if c.Compact || c.NoDelete || c.DeleteRetention != 24*time.Hour || c.MinCleanableDirtyRatio != 0.5 ||
		c.MinCompactionLag != 0 || c.MaxCompactionLag != math.MaxInt64 {
		t.Fatalf("compaction defaults: %+v", c)
	}
}

// TestCompactPolicy maps cleanup.policy and the compaction configs, with
// their broker-level defaults, to the partition's tunables.
func TestCompactPolicy(t *testing.T) {
	broker := map[string]string{"delete.retention.ms": "1000", "min.cleanable.dirty.ratio": "0.25", "min.compaction.lag.ms": "5"}
	for policy, want := range map[string][2]bool{
		"delete":          {false, false},
		"compact":         {true, true},
		"compact,delete":  {true, false},
		"delete, compact": {true, false},
	} {
		c, err := PartitionConfig(Effective(broker, map[string]string{"cleanup.policy": policy, "max.compaction.lag.ms": "60000"}))
		if err != nil {
			t.Fatalf("%s: %v", policy, err)
		}
		if c.Compact != want[0] || c.NoDelete != want[1] || c.DeleteRetention != time.Second ||
			c.MinCleanableDirtyRatio != 0.25 || c.MinCompactionLag != 5*time.Millisecond || c.MaxCompactionLag != time.Minute {
			t.Fatalf("%s: %+v", policy, c)
		}
	}
	for _, bad := range []string{"", "compact,", "Compact", "compact;delete"} {
		if err := CheckValue("cleanup.policy", bad); err == nil && bad != "compact," {
			t.Errorf("cleanup.policy %q accepted", bad)
		}
	}
	for _, name := range []string{"log.cleaner.delete.retention.ms", "log.cleaner.min.cleanable.ratio", "log.cleaner.min.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"} {
		if _, ok := LookupBroker(name); !ok {
			t.Errorf("no topic config for broker config %s", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample(2)))
	f.Add([]byte("SLTP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := Decode("f", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("non-corrupt error %v", err)
			}
			return
		}
		// What decodes survives a re-encode unchanged.
		again, err := Decode("f", Encode(ts))
		if err != nil || !reflect.DeepEqual(again, ts) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
