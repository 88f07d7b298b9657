package wal

import (
	"bytes"
	"context"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
)

// AppendParts(head, body) is the record head+body, byte for byte, with a
// CRC that a reopened log accepts.
func TestAppendParts(t *testing.T) {
	fs := vfs.NewMem()
	w, err := Open(Options{FS: fs, Dir: "w"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("headbody"), []byte("body-only"), []byte("head-only"), {}}
	parts := [][2][]byte{{[]byte("head"), []byte("body")}, {nil, []byte("body-only")}, {[]byte("head-only"), nil}, {nil, nil}}
	for _, p := range parts {
		done := make(chan error, 1)
		if _, err := w.AppendParts(context.Background(), p[0], p[1], func(_ LSN, err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = Open(Options{FS: fs, Dir: "w"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var got [][]byte
	if err := w.Replay(0, func(_ LSN, p []byte) error { got = append(got, append([]byte{}, p...)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}
