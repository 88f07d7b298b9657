package segment

import (
	"errors"
	"slices"
	"testing"

	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/vfs"
)

func TestTxnIndex(t *testing.T) {
	mem := vfs.NewMem()
	mem.MkdirAll("p")
	e := env(t, mem)
	s, err := Create(mem, "p", 0, Options{IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	// The file exists from the segment's creation, with its header.
	if got, err := readTxnIndex(mem, s.Path(TxnIndexSuffix), 0); err != nil || len(got) != 0 {
		t.Fatalf("txnindex at creation: %v %v", got, err)
	}
	appendN(t, s, 4)
	// A segment being written holds its entries; the first flush makes
	// the file durable even when there are none.
	if got, err := s.AbortedTxns(); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	if err := s.Flush(e); err != nil {
		t.Fatal(err)
	}
	if err := mem.SyncDir("p"); err != nil { // the partition's flush does this
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashOptions{})
	if got, err := readTxnIndex(crashed, s.Path(TxnIndexSuffix), 0); err != nil || len(got) != 0 {
		t.Fatalf("no durable txnindex after the first flush: %v %v", got, err)
	}
	want := []producer.AbortedTxn{
		{ProducerID: 7, FirstOffset: 0, LastOffset: 3, LastStableOffset: 4},
		{ProducerID: 8, FirstOffset: 1, LastOffset: 6, LastStableOffset: 7},
	}
	s.AddAbortedTxn(want[0])
	if err := s.Flush(e); err != nil {
		t.Fatal(err)
	}
	s.AddAbortedTxn(want[1])
	s.Seal()
	if err := s.Flush(e); err != nil {
		t.Fatal(err)
	}
	if s.TxnLoaded() {
		t.Fatal("a flushed segment keeps its entries in memory")
	}
	got, err := s.AbortedTxns()
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("from the file: %+v %v", got, err)
	}

	// A damaged file is a CorruptError; a missing one is
	// ErrTxnIndexMissing; WriteTxnIndex puts it back.
	f, _ := mem.OpenRW(s.Path(TxnIndexSuffix))
	f.Truncate(int64(txnHeaderBytes + txnEntryBytes + 5))
	f.Close()
	var ce *CorruptError
	if _, err := s.AbortedTxns(); !errors.As(err, &ce) {
		t.Fatalf("torn: %v", err)
	}
	mem.Remove(s.Path(TxnIndexSuffix))
	if _, err := s.AbortedTxns(); !errors.Is(err, ErrTxnIndexMissing) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.WriteTxnIndex(want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AbortedTxns(); err != nil || !slices.Equal(got, want) {
		t.Fatalf("rewritten: %+v %v", got, err)
	}

	// Truncation: the owner sets the kept entries; the flush rewrites the
	// file in place and cuts it.
	s2, err := Create(mem, "p", 100, Options{IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s2, 3)
	s2.AddAbortedTxn(producer.AbortedTxn{ProducerID: 1, FirstOffset: 100, LastOffset: 101, LastStableOffset: 102})
	s2.AddAbortedTxn(producer.AbortedTxn{ProducerID: 2, FirstOffset: 100, LastOffset: 105, LastStableOffset: 106})
	if err := s2.Flush(e); err != nil {
		t.Fatal(err)
	}
	if err := s2.TruncateTo(e, 103); err != nil {
		t.Fatal(err)
	}
	keep := []producer.AbortedTxn{{ProducerID: 1, FirstOffset: 100, LastOffset: 101, LastStableOffset: 102}}
	s2.SetAbortedTxns(keep)
	if err := s2.Flush(e); err != nil {
		t.Fatal(err)
	}
	b, _ := vfs.ReadFile(mem, s2.Path(TxnIndexSuffix), 0)
	if got, err := DecodeTxnIndex("x", 100, b); err != nil || !slices.Equal(got, keep) {
		t.Fatalf("after truncation: %+v %v", got, err)
	}
	if err := s2.Remove(e.Files); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat(s2.Path(TxnIndexSuffix)); err == nil {
		t.Fatal("Remove left the txnindex")
	}
}

func FuzzDecodeTxnIndex(f *testing.F) {
	s := &Segment{base: 10}
	f.Add(s.encodeTxnIndex([]producer.AbortedTxn{{ProducerID: 1, FirstOffset: 3, LastOffset: 12, LastStableOffset: 13}}))
	f.Add(s.encodeTxnIndex(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeTxnIndex("fuzz", 10, b)
		if err != nil {
			return
		}
		if again := s.encodeTxnIndex(got); string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// readTxnIndex decodes the .txnindex at path as fsys holds it.
func readTxnIndex(fsys vfs.FS, path string, base int64) ([]producer.AbortedTxn, error) {
	b, err := vfs.ReadFile(fsys, path, 0)
	if err != nil {
		return nil, err
	}
	return DecodeTxnIndex(path, base, b)
}
