package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
)

// encodeFuzzFiles packs file contents as the fuzz input: a count byte,
// then per file but the last a 2-byte little-endian length and the bytes;
// the last file takes the rest.
func encodeFuzzFiles(files [][]byte) []byte {
	out := []byte{byte(len(files) - 1)}
	for i, f := range files {
		if i < len(files)-1 {
			out = binary.LittleEndian.AppendUint16(out, uint16(len(f)))
		}
		out = append(out, f...)
	}
	return out
}

func decodeFuzzFiles(data []byte) [][]byte {
	if len(data) == 0 {
		return nil
	}
	n := 1 + int(data[0]%4)
	data = data[1:]
	var files [][]byte
	for i := 0; i < n-1 && len(data) >= 2; i++ {
		l := min(int(binary.LittleEndian.Uint16(data)), len(data)-2)
		files = append(files, data[2:2+l])
		data = data[2+l:]
	}
	return append(files, data)
}

// fuzzSeed writes a real log with small files and returns its .wal files.
func fuzzSeed(f *testing.F, sizes []int) [][]byte {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 256
	w := mustOpen(f, o)
	for i, n := range sizes {
		if _, err := w.AppendSync(context.Background(), payloadOf(i, n)); err != nil {
			f.Fatal(err)
		}
	}
	mustClose(f, w)
	var files [][]byte
	for _, name := range walFiles(f, fs, walSuffix) {
		files = append(files, readFile(f, fs, path.Join(testDir, name)))
	}
	return files
}

// FuzzScan treats the input as one to four .wal files (seqs 1 to 4).
// Invariants: Open and Replay never panic; Open fails only with
// ErrCorrupt; every replayed record is a frame in the input, at the
// place its LSN says, whose checksum (computed here independently)
// matches; records are contiguous; and recovery is stable: reopening
// finds the same records and the same end.
func FuzzScan(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 'S', 'L', 'W', 'L'})
	seed := fuzzSeed(f, []int{10, 40, 0, 100, 7, 200, 3})
	f.Add(encodeFuzzFiles(seed))
	f.Add(encodeFuzzFiles(seed[:1]))
	if len(seed) >= 3 {
		f.Add(encodeFuzzFiles(seed[1:3]))
	}
	f.Add(encodeFuzzFiles(fuzzSeed(f, []int{300, 1, 1})))

	f.Fuzz(func(t *testing.T, data []byte) {
		files := decodeFuzzFiles(data)
		fs := vfs.NewMem()
		if err := fs.MkdirAll(testDir); err != nil {
			t.Fatal(err)
		}
		for i, b := range files {
			p := walPath(testDir, uint64(i+1))
			fl, err := fs.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fl.WriteAt(b, 0); err != nil && len(b) > 0 {
				t.Fatal(err)
			}
			fl.Close()
		}
		o := memOpts(fs)
		o.FileBytes = 256
		w, err := Open(o)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt or success", err)
			}
			return
		}
		first := w.mu.files[0].startLSN
		got := replayAll(t, w, first)
		end := w.End()
		for i, r := range got {
			if err := verifyFuzzRecord(files, w.recovered, r); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if i > 0 && r.lsn != endOf(got[i-1:i]) {
				t.Fatalf("record %d at LSN %d, previous ends at %d", i, r.lsn, endOf(got[i-1:i]))
			}
		}
		if len(got) > 0 && endOf(got) != end {
			t.Fatalf("records end at %d, End %d", endOf(got), end)
		}
		mustClose(t, w)

		w = mustOpen(t, o)
		defer mustClose(t, w)
		again := replayAll(t, w, first)
		if w.End() != end || !bytesPrefix(got, again) || len(again) != len(got) {
			t.Fatalf("reopen: %d records ending at %d, first open %d ending at %d", len(again), w.End(), len(got), end)
		}
	})
}

func verifyFuzzRecord(files [][]byte, recovered []fileInfo, r rec) error {
	for _, fi := range recovered {
		if r.lsn < fi.startLSN || r.lsn >= fi.end {
			continue
		}
		if fi.seq < 1 || fi.seq > uint64(len(files)) {
			return fmt.Errorf("LSN %d in file seq %d, which the input does not hold", r.lsn, fi.seq)
		}
		b := files[fi.seq-1]
		off := uint64(fileHeaderBytes) + uint64(r.lsn-fi.startLSN)
		if off+frameHeaderBytes+uint64(len(r.payload)) > uint64(len(b)) {
			return fmt.Errorf("LSN %d: frame past the end of file %d", r.lsn, fi.seq)
		}
		hdr := b[off : off+frameHeaderBytes]
		payload := b[off+frameHeaderBytes : off+frameHeaderBytes+uint64(len(r.payload))]
		if binary.BigEndian.Uint32(hdr[4:8]) != uint32(len(r.payload)) || !bytes.Equal(payload, r.payload) {
			return fmt.Errorf("LSN %d: payload differs from the input", r.lsn)
		}
		var seq [8]byte
		binary.BigEndian.PutUint64(seq[:], fi.seq)
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		h.Write(payload)
		h.Write(hdr[4:10])
		h.Write(seq[:])
		if h.Sum32() != binary.BigEndian.Uint32(hdr[0:4]) || hdr[8] != recordFull || hdr[9] != frameVersion {
			return fmt.Errorf("LSN %d: checksum, type or version does not match", r.lsn)
		}
		return nil
	}
	return fmt.Errorf("LSN %d in no recovered file", r.lsn)
}
