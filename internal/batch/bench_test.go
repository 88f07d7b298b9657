package batch

import (
	"fmt"
	"testing"
)

// benchBatch builds an uncompressed batch of about size bytes out of 1 KiB
// records, the common shape of a producer's batch.
func benchBatch(b *testing.B, codec Codec, size int) []byte {
	b.Helper()
	recs := testRecords(42, max(size/1024, 1), 1024)
	out, err := Build(codec, 0, recs, BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkValidate is dominated by the CRC-32C, which should run at
// memory speed with the hardware instruction.
func BenchmarkValidate(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			batch := benchBatch(b, CodecNone, size)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Validate(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIter(b *testing.B) {
	one := benchBatch(b, CodecNone, 16<<10)
	var set []byte
	for range 64 {
		set = append(set, one...)
	}
	b.SetBytes(int64(len(set)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for it := NewIter(set); it.Next(); {
			n++
		}
		if n != 64 {
			b.Fatal(n)
		}
	}
}

// BenchmarkRecords measures decoding a 64 KiB batch, decompression
// included; MB/s is of the decoded records.
func BenchmarkRecords(b *testing.B) {
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			batch := benchBatch(b, codec, 64<<10)
			var size int64
			_ = Records(batch, func(r *Record) error { size += int64(len(r.Key) + len(r.Value)); return nil })
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if err := Records(batch, func(*Record) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
