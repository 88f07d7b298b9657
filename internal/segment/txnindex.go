package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/vfs"
)

// TxnIndexSuffix names a segment's aborted-transaction index.
const TxnIndexSuffix = ".txnindex"

// Transaction index layout (docs/format/txnindex.md), big-endian: a
// 16-byte header, magic "SLXA" | version u16 | flags u16 | base offset
// i64, then one 32-byte entry per ABORT marker in the segment, in offset
// order: producer id i64 | first offset i64 | last offset i64 | last
// stable offset i64.
const (
	txnMagic       = "SLXA"
	txnVersion     = 1
	txnHeaderBytes = 16
	txnEntryBytes  = 32
	// txnIndexBytesMax bounds what a load reads: a segment spans less
	// than 2^31 offsets and a marker takes at least one, but no real
	// segment holds more than a few million markers.
	txnIndexBytesMax = txnHeaderBytes + (64<<20)/txnEntryBytes*txnEntryBytes
)

// ErrTxnIndexMissing is returned by AbortedTxns for a flushed segment
// without a .txnindex: its owner rebuilds it by scanning.
var ErrTxnIndexMissing = errors.New("segment: transaction index missing")

// txnState is a segment's aborted transactions. For a segment being
// written (active, sealed, recovered, a compaction's output) they are in
// memory (loaded) and the flush appends the new ones to the file; a
// flushed segment drops them and AbortedTxns reads the file, which is
// small and rarely read (read_committed fetches only).
type txnState struct {
	loaded  bool
	entries []producer.AbortedTxn
	written int // entries in the file; rewriteIndex to rewrite it all
	// synced: the file's written entries are durable (a flush ran since
	// the segment created it).
	synced bool
}

func encodeTxnHeader(base int64) []byte {
	b := make([]byte, 0, txnHeaderBytes)
	b = append(b, txnMagic...)
	b = binary.BigEndian.AppendUint16(b, txnVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	return binary.BigEndian.AppendUint64(b, uint64(base))
}

func appendTxnEntry(b []byte, e producer.AbortedTxn) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerID))
	b = binary.BigEndian.AppendUint64(b, uint64(e.FirstOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(e.LastOffset))
	return binary.BigEndian.AppendUint64(b, uint64(e.LastStableOffset))
}

// DecodeTxnIndex decodes a .txnindex (path names it in errors) of the
// segment at base. Any damage is a *CorruptError.
func DecodeTxnIndex(path string, base int64, b []byte) ([]producer.AbortedTxn, error) {
	bad := func(off int, format string, args ...any) ([]producer.AbortedTxn, error) {
		return nil, &CorruptError{Path: path, Offset: int64(off), Err: fmt.Errorf(format, args...)}
	}
	if len(b) < txnHeaderBytes {
		return bad(0, "%d bytes is shorter than the header", len(b))
	}
	if string(b[:4]) != txnMagic {
		return bad(0, "magic %q", b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != txnVersion {
		return bad(4, "version %d, this binary reads %d", v, txnVersion)
	}
	if f := binary.BigEndian.Uint16(b[6:]); f != 0 {
		// No flag is defined: one set means a newer writer.
		return bad(6, "unknown flags %#04x", f)
	}
	if got := int64(binary.BigEndian.Uint64(b[8:])); got != base {
		return bad(8, "base offset %d, segment %d", got, base)
	}
	if (len(b)-txnHeaderBytes)%txnEntryBytes != 0 {
		return bad(len(b)-(len(b)-txnHeaderBytes)%txnEntryBytes, "torn entry")
	}
	out := make([]producer.AbortedTxn, 0, (len(b)-txnHeaderBytes)/txnEntryBytes)
	prev := base - 1
	for pos := txnHeaderBytes; pos < len(b); pos += txnEntryBytes {
		e := producer.AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[pos:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[pos+8:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[pos+16:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[pos+24:])),
		}
		// The marker is in this segment, after the previous one; the
		// transaction began before it.
		if e.ProducerID < 0 || e.LastOffset <= prev || e.FirstOffset < 0 || e.FirstOffset > e.LastOffset || e.LastStableOffset < 0 {
			return bad(pos, "entry %+v after marker %d", e, prev)
		}
		prev = e.LastOffset
		out = append(out, e)
	}
	return out, nil
}

// encodeTxnIndex returns the whole file for entries.
func (s *Segment) encodeTxnIndex(entries []producer.AbortedTxn) []byte {
	b := encodeTxnHeader(s.base)
	for _, e := range entries {
		b = appendTxnEntry(b, e)
	}
	return b
}

// AddAbortedTxn records an ABORT marker appended to this segment (the
// segment must hold its entries in memory: it is being written).
func (s *Segment) AddAbortedTxn(e producer.AbortedTxn) {
	if !s.txn.loaded {
		panic(fmt.Sprintf("segment: aborted transaction added to %s segment %s", s.state, s.Path(LogSuffix)))
	}
	s.txn.entries = append(s.txn.entries, e)
}

// SetAbortedTxns replaces the segment's aborted transactions (recovery and
// truncation rebuild them); the next flush rewrites the file.
func (s *Segment) SetAbortedTxns(entries []producer.AbortedTxn) {
	s.txn = txnState{loaded: true, entries: entries, written: rewriteIndex}
}

// TxnLoaded reports whether the segment holds its aborted transactions in
// memory (it is being written), as opposed to in its file only.
func (s *Segment) TxnLoaded() bool { return s.txn.loaded }

// AbortedTxns returns the segment's aborted transactions, in marker
// order: from memory, or from the file for a flushed segment. A missing
// file is ErrTxnIndexMissing, a damaged one a *CorruptError: the owner
// rebuilds them by scanning the log (it alone knows where each
// transaction began). The caller holds the owner's lock (shared is
// enough) and must not modify the result.
func (s *Segment) AbortedTxns() ([]producer.AbortedTxn, error) {
	if s.txn.loaded {
		return s.txn.entries, nil
	}
	return s.loadTxnIndex()
}

func (s *Segment) loadTxnIndex() ([]producer.AbortedTxn, error) {
	path := s.Path(TxnIndexSuffix)
	f, err := s.fs.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrTxnIndexMissing, path)
	}
	if err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", path, err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("segment: %s: %w", path, err)
	}
	if n > txnIndexBytesMax {
		return nil, &CorruptError{Path: path, Offset: 0, Err: fmt.Errorf("%d bytes, at most %d", n, txnIndexBytesMax)}
	}
	b := make([]byte, n)
	if err := readFull(f, b, 0); err != nil {
		return nil, fmt.Errorf("segment: read %s: %w", path, err)
	}
	return DecodeTxnIndex(path, s.base, b)
}

// WriteTxnIndex writes entries as the whole .txnindex of a flushed segment
// (after its owner rebuilt them) and syncs it. It goes through a temporary
// file and a rename, so a reader never sees it half written; the caller
// syncs the directory if it needs the name durable (a lost rename only
// costs another rebuild).
func (s *Segment) WriteTxnIndex(entries []producer.AbortedTxn) error {
	path := s.Path(TxnIndexSuffix)
	tmp := path + ".tmp"
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("segment: create %s: %w", tmp, err)
	}
	_, err = f.WriteAt(s.encodeTxnIndex(entries), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, path)
	}
	if err != nil {
		_ = s.fs.Remove(tmp)
		return fmt.Errorf("segment: write %s: %w", path, err)
	}
	return nil
}

// txnFlush is the part of a FlushJob that writes the transaction index.
type txnFlush struct {
	data []byte // the whole file as it should be
	from int    // bytes already in the file; 0 to rewrite it
	n    int    // entries data holds
}

func (s *Segment) prepareTxnFlush() *txnFlush {
	if !s.txn.loaded || (s.txn.written == len(s.txn.entries) && s.txn.synced) {
		return nil
	}
	j := &txnFlush{data: s.encodeTxnIndex(s.txn.entries), n: len(s.txn.entries)}
	if s.txn.written >= 0 {
		j.from = txnHeaderBytes + s.txn.written*txnEntryBytes
	}
	return j
}

// run writes the new entries at the file's end; a rewrite writes the whole
// file over the old one in place and then cuts it, so that a crash part
// way leaves every entry that was durable before (the rewrite puts the
// same bytes back) rather than an empty file. Entries past a cut can only
// describe markers past the last checkpoint, which recovery rebuilds.
func (j *txnFlush) run(s *Segment, sync bool) (created bool, err error) {
	if j.from >= len(j.data) && !sync {
		// Nothing new, and the caller makes the file (created with the
		// segment) durable with the rest: no need to open it.
		return false, nil
	}
	path := s.Path(TxnIndexSuffix)
	f, err := s.fs.OpenRW(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = s.fs.Create(path)
		created = true
	}
	if err != nil {
		return false, fmt.Errorf("segment: open %s: %w", path, err)
	}
	defer f.Close()
	if j.from < len(j.data) {
		if _, err := f.WriteAt(j.data[j.from:], int64(j.from)); err != nil {
			return created, fmt.Errorf("segment: write %s: %w", path, err)
		}
	}
	if j.from == 0 {
		if err := truncateTo(f, int64(len(j.data))); err != nil {
			return created, fmt.Errorf("segment: truncate %s: %w", path, err)
		}
	}
	if sync {
		if err := f.Sync(); err != nil {
			return created, fmt.Errorf("segment: sync %s: %w", path, err)
		}
	}
	return created, nil
}

func truncateTo(f vfs.File, n int64) error {
	size, err := f.Size()
	if err != nil || size <= n {
		return err
	}
	return f.Truncate(n)
}
