// Package topics is the broker's durable registry of topics: for each topic
// its name, its topic ID (a random UUID), its partition count and the
// configs set on it (Kafka keys to string values; defaults are not stored).
//
// The registry is one file, "topics", in the data directory. Every change
// rewrites it whole: a temporary file is written and synced, renamed over the
// old one, and the directory is synced, so a crash leaves either the old or
// the new registry, never a mix. The layout (magic, version, CRC) is in
// docs/format/topics.md. Topic counts are small next to the data, so a full
// rewrite per change is cheap; MaxTopics bounds it.
//
// The registry is the source of truth for which topics exist: the broker
// creates missing partitions and deletes orphaned ones at start-up to match
// it.
//
// A Registry is safe for concurrent use.
package topics

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"path/filepath"
	"sort"
	"sync"

	"github.com/sluice-io/sluice/internal/vfs"
)

// FileName is the registry's file in the data directory.
const FileName = "topics"

const (
	magic   = "SLTP"
	version = 1

	headerSize = 4 + 2 + 2 + 4 // magic, version, flags, count
	crcSize    = 4

	// MaxTopics bounds the registry, and so the size of each rewrite.
	MaxTopics = 100_000
	// MaxPartitions bounds one topic's partition count.
	MaxPartitions = 100_000
	// maxNameBytes is Kafka's limit on topic names.
	maxNameBytes = 249
	// maxConfigs bounds the configs stored per topic.
	maxConfigs = 256
	// maxConfigValueBytes bounds one config value.
	maxConfigValueBytes = 64 << 10
	// maxFileBytes bounds what Open reads, so a corrupt or foreign file
	// cannot make it allocate without limit.
	maxFileBytes = 1 << 30
)

var (
	// ErrExists is returned when creating a topic whose name is taken.
	ErrExists = errors.New("topics: topic exists")
	// ErrNotFound is returned for an unknown topic.
	ErrNotFound = errors.New("topics: topic not found")
	// ErrCorrupt marks a registry file that fails its checks; every
	// *CorruptError matches it.
	ErrCorrupt = errors.New("topics: corrupt registry")
	// ErrLimit is returned past MaxTopics, MaxPartitions or a config
	// bound.
	ErrLimit = errors.New("topics: limit exceeded")
)

// CorruptError says what is wrong with the registry file, and where.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: %s at byte %d: %s", ErrCorrupt, e.Path, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// ID is a topic ID, a UUID.
type ID [16]byte

// NewID returns a random (version 4) UUID that is neither all zeros nor
// Kafka's reserved metadata topic ID (1).
func NewID() ID {
	var id ID
	for {
		if _, err := rand.Read(id[:]); err != nil {
			// crypto/rand does not fail on Linux; if it ever does,
			// there is no safe topic ID to hand out.
			panic(fmt.Sprintf("topics: crypto/rand: %v", err))
		}
		id[6] = id[6]&0x0f | 0x40
		id[8] = id[8]&0x3f | 0x80
		if id != (ID{}) && id != (ID{15: 1}) {
			return id
		}
	}
}

// String returns the canonical UUID text (Kafka's tools print topic IDs in
// base64, which is a display choice, not an identity).
func (id ID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

// Topic is one topic's durable metadata.
type Topic struct {
	Name       string
	ID         ID
	Partitions int32
	// Configs holds only the configs set on the topic (TOPIC_CONFIG);
	// everything else takes the broker's default.
	Configs map[string]string
}

func (t Topic) clone() Topic {
	t.Configs = maps.Clone(t.Configs)
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	return t
}

// Registry is the set of topics, kept in memory and on disk.
type Registry struct {
	fs   vfs.FS
	dir  string
	path string

	// writeMu serialises rewrites, so two changes never race on the
	// temporary file and the file always matches some state of mu.
	writeMu sync.Mutex
	mu      struct {
		sync.RWMutex
		byName map[string]Topic
		byID   map[ID]string
	}
}

// Open loads the registry in dir, or starts an empty one if there is no
// file yet. A leftover temporary file from a crashed rewrite is removed.
func Open(fsys vfs.FS, dir string) (*Registry, error) {
	if fsys == nil {
		fsys = vfs.Default
	}
	r := &Registry{fs: fsys, dir: dir, path: filepath.Join(dir, FileName)}
	r.mu.byName = map[string]Topic{}
	r.mu.byID = map[ID]string{}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	if err := fsys.Remove(r.path + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("topics: remove leftover temporary file: %w", err)
	}
	b, err := readFile(fsys, r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	ts, err := Decode(r.path, b)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		r.mu.byName[t.Name] = t
		r.mu.byID[t.ID] = t.Name
	}
	return r, nil
}

func readFile(fsys vfs.FS, path string) ([]byte, error) {
	b, err := vfs.ReadFile(fsys, path, maxFileBytes)
	if errors.Is(err, vfs.ErrTooLarge) {
		return nil, &CorruptError{Path: path, Reason: err.Error()}
	}
	return b, err
}

// Get returns the topic named name.
func (r *Registry) Get(name string) (Topic, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.mu.byName[name]
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// ByID returns the topic with ID id.
func (r *Registry) ByID(id ID) (Topic, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	name, ok := r.mu.byID[id]
	if !ok {
		return Topic{}, false
	}
	return r.mu.byName[name].clone(), true
}

// List returns every topic, sorted by name.
func (r *Registry) List() []Topic {
	r.mu.RLock()
	out := make([]Topic, 0, len(r.mu.byName))
	for _, t := range r.mu.byName {
		out = append(out, t.clone())
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len returns the number of topics.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.mu.byName)
}

// Create adds t durably. The name and the ID must both be new.
func (r *Registry) Create(t Topic) error {
	if err := check(t); err != nil {
		return err
	}
	return r.change(func(byName map[string]Topic) error {
		if _, ok := byName[t.Name]; ok {
			return fmt.Errorf("%w: %q", ErrExists, t.Name)
		}
		for _, o := range byName {
			if o.ID == t.ID {
				return fmt.Errorf("%w: topic ID %s is taken by %q", ErrExists, t.ID, o.Name)
			}
		}
		if len(byName) >= MaxTopics {
			return fmt.Errorf("%w: %d topics", ErrLimit, MaxTopics)
		}
		byName[t.Name] = t.clone()
		return nil
	})
}

// Update replaces the partition count and configs of an existing topic
// (matched by name and ID) durably.
func (r *Registry) Update(t Topic) error {
	if err := check(t); err != nil {
		return err
	}
	return r.change(func(byName map[string]Topic) error {
		o, ok := byName[t.Name]
		if !ok || o.ID != t.ID {
			return fmt.Errorf("%w: %q", ErrNotFound, t.Name)
		}
		byName[t.Name] = t.clone()
		return nil
	})
}

// Delete removes the topic named name durably and returns it.
func (r *Registry) Delete(name string) (Topic, error) {
	var old Topic
	err := r.change(func(byName map[string]Topic) error {
		o, ok := byName[name]
		if !ok {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		old = o
		delete(byName, name)
		return nil
	})
	return old, err
}

// change applies fn to a copy of the topics, writes the result durably,
// and only then publishes it, so readers never see a state a crash could
// take back.
func (r *Registry) change(fn func(map[string]Topic) error) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	next := maps.Clone(r.mu.byName)
	r.mu.RUnlock()
	if err := fn(next); err != nil {
		return err
	}
	list := make([]Topic, 0, len(next))
	for _, t := range next {
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	if err := r.write(Encode(list)); err != nil {
		return err
	}
	byID := make(map[ID]string, len(next))
	for _, t := range next {
		byID[t.ID] = t.Name
	}
	r.mu.Lock()
	r.mu.byName, r.mu.byID = next, byID
	r.mu.Unlock()
	return nil
}

// write replaces the registry file with b atomically and durably.
func (r *Registry) write(b []byte) error {
	tmp := r.path + ".tmp"
	f, err := r.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("topics: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("topics: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("topics: close %s: %w", tmp, err)
	}
	if err := r.fs.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	if err := r.fs.SyncDir(r.dir); err != nil {
		return fmt.Errorf("topics: sync %s: %w", r.dir, err)
	}
	return nil
}

// check refuses a topic the file format or the limits cannot hold.
func check(t Topic) error {
	var errs []error
	if t.Name == "" || len(t.Name) > maxNameBytes {
		errs = append(errs, fmt.Errorf("topics: name of %d bytes outside [1, %d]", len(t.Name), maxNameBytes))
	}
	if t.ID == (ID{}) {
		errs = append(errs, errors.New("topics: zero topic ID"))
	}
	if t.Partitions < 1 || t.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("%w: %d partitions outside [1, %d]", ErrLimit, t.Partitions, MaxPartitions))
	}
	if len(t.Configs) > maxConfigs {
		errs = append(errs, fmt.Errorf("%w: %d configs, at most %d", ErrLimit, len(t.Configs), maxConfigs))
	}
	for k, v := range t.Configs {
		if k == "" || len(k) > 0xffff || len(v) > maxConfigValueBytes {
			errs = append(errs, fmt.Errorf("%w: config %q of %d bytes", ErrLimit, k, len(v)))
		}
	}
	return errors.Join(errs...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the registry file for ts (docs/format/topics.md). Configs
// are written sorted by key, so equal registries encode equally.
func Encode(ts []Topic) []byte {
	b := make([]byte, 0, headerSize+crcSize+len(ts)*64)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, version)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ts)))
	for _, t := range ts {
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Name)))
		b = append(b, t.Name...)
		b = append(b, t.ID[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(t.Partitions))
		keys := make([]string, 0, len(t.Configs))
		for k := range t.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = binary.BigEndian.AppendUint16(b, uint16(len(keys)))
		for _, k := range keys {
			v := t.Configs[k]
			b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
			b = append(b, k...)
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// Decode parses a registry file. path is only for error messages. It never
// panics: every length is checked against what is left.
func Decode(path string, b []byte) ([]Topic, error) {
	bad := func(off int, format string, args ...any) error {
		return &CorruptError{Path: path, Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < headerSize+crcSize {
		return nil, bad(0, "%d bytes is shorter than a header and checksum", len(b))
	}
	if string(b[:4]) != magic {
		return nil, bad(0, "magic %q, want %q", b[:4], magic)
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != version {
		return nil, bad(4, "version %d; this binary reads version %d", v, version)
	}
	if f := binary.BigEndian.Uint16(b[6:]); f != 0 {
		return nil, bad(6, "unknown flags %#x", f)
	}
	body := b[:len(b)-crcSize]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(b)-crcSize:]); got != want {
		return nil, bad(len(body), "crc %#08x does not match computed %#08x", want, got)
	}
	count := binary.BigEndian.Uint32(b[8:])
	if count > MaxTopics {
		return nil, bad(8, "%d topics exceeds %d", count, MaxTopics)
	}
	r := reader{b: body, off: headerSize}
	out := make([]Topic, 0, count)
	names := map[string]bool{}
	ids := map[ID]bool{}
	for i := uint32(0); i < count; i++ {
		start := r.off
		var t Topic
		t.Name = string(r.bytes(int(r.u16())))
		copy(t.ID[:], r.bytes(16))
		t.Partitions = int32(r.u32())
		n := int(r.u16())
		if r.err == nil && n > maxConfigs {
			return nil, bad(start, "topic %q has %d configs, at most %d", t.Name, n, maxConfigs)
		}
		t.Configs = make(map[string]string, n)
		for j := 0; j < n && r.err == nil; j++ {
			k := string(r.bytes(int(r.u16())))
			vlen := r.u32()
			if vlen > maxConfigValueBytes {
				return nil, bad(r.off-4, "config %q value of %d bytes", k, vlen)
			}
			t.Configs[k] = string(r.bytes(int(vlen)))
		}
		if r.err != nil {
			return nil, bad(r.off, "topic %d: %v", i, r.err)
		}
		if err := check(t); err != nil {
			return nil, bad(start, "topic %q: %v", t.Name, err)
		}
		if names[t.Name] || ids[t.ID] {
			return nil, bad(start, "topic %q or its ID %s appears twice", t.Name, t.ID)
		}
		names[t.Name], ids[t.ID] = true, true
		out = append(out, t)
	}
	if r.off != len(body) {
		return nil, bad(r.off, "%d trailing bytes", len(body)-r.off)
	}
	return out, nil
}

type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("truncated")

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.err = errShort
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return bytes.Clone(out)
}

func (r *reader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}
